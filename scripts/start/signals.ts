import { say } from './log.ts';
import type { Stack } from './stack.ts';

/**
 * SIGINT, SIGTERM or SIGHUP: an orderly stop with exit 0; a second one, a stop at once.
 * pnpm forwards the terminal's SIGINT to start.ts, which got it from the terminal already: one
 * Ctrl-C arrives twice within milliseconds. A signal a second later is a user's second Ctrl-C.
 */
export function stopOnSignals(stack: Stack): void {
  let firstSignalAt = 0;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (!stack.stopping) {
        firstSignalAt = Date.now();
        void stack.stop(0);
      } else if (Date.now() - firstSignalAt > 1000) {
        say('stopping at once (second signal)');
        stack.kill();
      }
    });
  }
}
