import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { REPO_ROOT } from '@llmgw/devkit';

/**
 * The local stack's API key (enterprise tier): created on first start, reused while valid. Kept
 * in `file` (relative to the working directory), by the api's own key CLI.
 */
export function devKey(opts: { redisEnv: Record<string, string>; keyPrefix: string; file: string }): string {
  const res = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--conditions=@llmgw/source',
      'apps/api/src/cli/keys.ts',
      'dev-key',
      resolve(opts.file),
    ],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, ...opts.redisEnv, KEY_PREFIX: opts.keyPrefix },
      encoding: 'utf8',
    },
  );
  if (res.status !== 0) throw new Error(`could not create a development key: ${res.stderr}`);
  return res.stdout.trim();
}
