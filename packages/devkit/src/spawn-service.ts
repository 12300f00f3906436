import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** Repository root (this file is packages/devkit/src/spawn-service.ts). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export const ENTRY = {
  api: 'apps/api/src/main.ts',
  worker: 'apps/worker/src/main.ts',
  sim: 'apps/sim/src/main.ts',
} as const;
export type ServiceName = keyof typeof ENTRY;

export interface SpawnedService {
  name: string;
  child: ChildProcess;
  /** Parsed JSON log lines seen so far (non-JSON lines kept as `{ msg: line }`). */
  lines: Record<string, unknown>[];
  /** Resolves with the first log line that satisfies `pred` (rejects on exit or timeout). */
  waitFor(
    pred: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/**
 * Runs one of our services as a real child process (TypeScript through tsx's loader), with its
 * own environment, collecting its JSON log lines. `onLine` sees each line (pnpm start prints them).
 */
export function spawnService(
  service: ServiceName,
  env: Record<string, string | undefined>,
  opts: {
    name?: string;
    args?: string[];
    /** Flags for node itself, e.g. `--cpu-prof` (not allowed in NODE_OPTIONS). */
    nodeArgs?: string[];
    onLine?: (line: Record<string, unknown>, raw: string) => void;
    /**
     * Run in a process group of its own, so a terminal's Ctrl-C (sent to the whole foreground
     * group) reaches only the parent, which then stops the child once, in its own order. The
     * parent must then stop it itself, even when it dies: see {@link guardProcessGroups}.
     */
    detached?: boolean;
  } = {},
): SpawnedService {
  const child = spawn(
    process.execPath,
    [
      ...(opts.nodeArgs ?? []),
      '--import',
      'tsx',
      // Workspace packages export src/*.ts under this condition, dist/*.js otherwise (production build).
      '--conditions=@llmgw/source',
      ENTRY[service],
      ...(opts.args ?? []),
    ],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: opts.detached ?? false,
    },
  );
  const lines: Record<string, unknown>[] = [];
  const waiters = new Set<{
    pred: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }>();
  const onRaw = (raw: string) => {
    let line: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(raw);
      line =
        typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : { msg: raw };
    } catch {
      line = { msg: raw };
    }
    lines.push(line);
    opts.onLine?.(line, raw);
    for (const w of waiters) {
      if (w.pred(line)) {
        waiters.delete(w);
        w.resolve(line);
      }
    }
  };
  createInterface({ input: child.stdout! }).on('line', onRaw);
  createInterface({ input: child.stderr! }).on('line', onRaw);
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1));
  });

  return {
    name: opts.name ?? service,
    child,
    lines,
    exited,
    waitFor(pred, timeoutMs = 20_000) {
      const seen = lines.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve };
        waiters.add(w);
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`${opts.name ?? service}: no matching log line within ${timeoutMs} ms`));
        }, timeoutMs);
        exited.then((code) => {
          if (waiters.delete(w))
            reject(new Error(`${opts.name ?? service} exited (${code}) before the expected log line`));
        });
        const done = w.resolve;
        w.resolve = (l) => {
          clearTimeout(timer);
          done(l);
        };
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
