import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT } from './spawn-service.ts';

export interface GroupGuard {
  /** A process group (its leader's pid) to stop should this process die without stopping it. */
  add(pgid: number): void;
  /** Stopped (or exited) by this process: nothing to do for it any more. */
  remove(pgid: number): void;
}

/**
 * Children spawned `detached` lead process groups of their own, so the terminal's Ctrl-C reaches
 * only their parent, which stops them in order. The flip side: they outlive a parent that dies
 * without stopping them, and a `process.on('exit')` hook cannot help when that death is a
 * SIGKILL. So a small watchdog process (group-watchdog.ts, in a group of its own too) holds a pipe
 * from this process and stops the groups still registered once that pipe closes.
 */
export function guardProcessGroups(graceMs: number): GroupGuard {
  const watchdog = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('./group-watchdog.ts', import.meta.url)), String(graceMs)],
    { cwd: REPO_ROOT, detached: true, stdio: ['pipe', 'ignore', 'ignore'] },
  );
  // Neither the watchdog nor its pipe keeps this process alive.
  watchdog.unref();
  const pipe = watchdog.stdin!;
  (pipe as unknown as { unref(): void }).unref();
  pipe.on('error', () => {});
  return {
    add: (pgid) => void pipe.write(`+${pgid}\n`),
    remove: (pgid) => void pipe.write(`-${pgid}\n`),
  };
}
