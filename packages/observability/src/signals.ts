import type { Logger } from 'pino';

/**
 * SIGINT/SIGTERM → `close()` then exit 0 (exit 1 if it throws); a second signal exits at once,
 * unless it comes within a second of the first: that is one stop delivered twice (a terminal's
 * Ctrl-C reaches the whole process group, and `pnpm <script>` forwards it once more).
 * The entry files' whole shutdown wiring.
 */
export function exitOnSignals(log: Logger, close: () => Promise<void>): void {
  let signals = 0;
  let firstAt = 0;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (++signals > 1) {
        if (Date.now() - firstAt < 1000) return;
        process.exit(1);
      }
      firstAt = Date.now();
      log.info({ signal: sig }, 'shutdown_started');
      close().then(
        () => process.exit(0),
        (err: Error) => {
          log.error({ err: err.message }, 'shutdown_failed');
          process.exit(1);
        },
      );
    });
  }
}
