import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import { liveDevStacks } from '@llmgw/config';
import { REPO_ROOT } from '@llmgw/devkit';
import { say } from './log.ts';

export interface DevKey {
  key: string;
  /** The file holding it: `file`, or `fallback` when `file` holds another stack's key. */
  file: string;
  /** `file` held a key this stack does not accept, and that no running stack uses: it was replaced. */
  replaced: boolean;
}

const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').trim() : '');

/**
 * The local stack's API key (enterprise tier), by the api's own key CLI: the one in `file` while
 * this stack accepts it, else a new one. `fallback`, set when a running stack with another Redis
 * or prefix keeps its key in `file`: that file is never replaced, and a key of this stack's own is
 * kept in `fallback` instead. Without it, a key no running stack uses is replaced (the caller
 * says so): its stack is gone, or its private Redis is, and the key with it. Both paths absolute:
 * the CLI runs in the repository root.
 */
export function devKey(opts: {
  redisEnv: Record<string, string>;
  keyPrefix: string;
  file: string;
  fallback?: string;
}): DevKey {
  const before = read(opts.file);
  const res = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--conditions=@llmgw/source',
      'apps/api/src/cli/keys.ts',
      'dev-key',
      opts.file,
      ...(opts.fallback === undefined ? [] : ['--or', opts.fallback]),
    ],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, ...opts.redisEnv, KEY_PREFIX: opts.keyPrefix },
      encoding: 'utf8',
    },
  );
  if (res.status !== 0) throw new Error(`could not create a development key: ${res.stderr}`);
  const key = res.stdout.trim();
  const inFile = read(opts.file) === key;
  return {
    key,
    file: inFile || opts.fallback === undefined ? opts.file : opts.fallback,
    replaced: inFile && before !== '' && before !== key,
  };
}

/** A path as the developer would type it: relative to the working directory when inside it. */
export function shown(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? file : rel;
}

/**
 * This stack's development key, kept in `file` (absolute) unless another running stack (the
 * dev-state file says which) keeps its own there: then in `<file>.<api port>`, a port no other
 * running stack has. Either way a line says when a file was left alone or replaced, so a
 * developer whose `cat .llmgw-dev-key` stops working knows why (issue 24 §7).
 */
export function stackDevKey(opts: {
  redisEnv: Record<string, string>;
  keyPrefix: string;
  file: string;
  stateFile: string;
  apiPort: number;
}): DevKey {
  const holder = liveDevStacks(opts.stateFile).find((s) => s.pid !== process.pid && s.key_file === opts.file);
  const k = devKey({ ...opts, ...(holder && { fallback: `${opts.file}.${opts.apiPort}` }) });
  if (holder && k.file !== opts.file) {
    say(
      `${shown(opts.file)} holds the key of the stack at ${holder.api} (Redis ${holder.redis}, key prefix ` +
        `${holder.key_prefix}): left as it is; this stack's key is in ${shown(k.file)}`,
    );
  }
  if (k.replaced) {
    say(
      `replaced the key in ${shown(opts.file)}: this stack does not accept it, and no running stack uses it`,
    );
  }
  return k;
}
