import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * The dev-state file: where each running `pnpm start` says which Redis and key prefix its stack
 * uses, so that the keys CLI (`pnpm keys`) run beside it reaches the same stack without being
 * told (issue 24 §7: the README's `pnpm keys create` made keys under `llmgw` that the dev stack,
 * under `llmgw-dev` and maybe on a private redis-server, rejected). `LLMGW_DEV_STATE_FILE`,
 * default `.llmgw-dev-state.json` in the working directory; git-ignored, mode 0600, since the
 * Redis variables may carry a password.
 *
 *   {"stacks":[{"pid":4711,"started_at":1764061200000,"api":"http://127.0.0.1:8000",
 *     "redis":"redis://127.0.0.1:40123","redis_env":{"REDIS_URL":"redis://127.0.0.1:40123"},
 *     "key_prefix":"llmgw-dev","key_file":"/…/.llmgw-dev-key"}]}
 *
 * One entry per running stack: added once it is ready, removed when it exits. An entry whose
 * process is gone (a `kill -9`) is ignored by readers and dropped by the next write.
 */
export const DevStackSchema = z.object({
  /** Process id of `pnpm start` (scripts/start.ts). */
  pid: z.number().int().positive(),
  started_at: z.number(),
  /** The api's URL. */
  api: z.string(),
  /** Where its Redis is, for messages (describeRedisTarget: never the password). */
  redis: z.string(),
  /** The Redis variables its services run with: what a tool sets to reach the same Redis. */
  redis_env: z.record(z.string(), z.string()),
  key_prefix: z.string(),
  /** Absolute path of the file holding its development key (none with AUTH_MODE=trusted_headers). */
  key_file: z.string().optional(),
});
export type DevStack = z.infer<typeof DevStackSchema>;

const DevStateSchema = z.object({ stacks: z.array(DevStackSchema) });

/** Whether process `pid` exists (EPERM: it does, as another user's). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readStacks(file: string): DevStack[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  try {
    return DevStateSchema.parse(JSON.parse(text)).stacks;
  } catch {
    // Not a state file of ours (hand-edited, cut short): nothing in it can be trusted.
    return [];
  }
}

/** The stacks in `file` whose `pnpm start` still runs, oldest first. */
export function liveDevStacks(file: string): DevStack[] {
  return readStacks(file).filter((s) => alive(s.pid));
}

/**
 * Rewritten whole through a rename, so a reader never sees half a file. Two stacks that become
 * ready in the same instant could still lose one entry (read, then rename): a developer's
 * machine, where that is rare and costs only the CLI's view of that stack.
 */
function writeStacks(file: string, stacks: DevStack[]): void {
  if (stacks.length === 0) {
    try {
      unlinkSync(file);
    } catch {}
    return;
  }
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ stacks }, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

/** Records `stack` (replacing an entry of the same pid) and drops the entries of stacks that are gone. */
export function addDevStack(file: string, stack: DevStack): void {
  writeStacks(file, [...liveDevStacks(file).filter((s) => s.pid !== stack.pid), stack]);
}

/** Removes the entry of `pid`; the file goes once no stack is left. Synchronous: for an `exit` handler. */
export function removeDevStack(file: string, pid: number): void {
  const stacks = readStacks(file);
  if (!stacks.some((s) => s.pid === pid)) return;
  writeStacks(
    file,
    stacks.filter((s) => s.pid !== pid && alive(s.pid)),
  );
}
