import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DevStack, redisEnvFields } from '@llmgw/config';
import { REPO_ROOT } from '@llmgw/devkit';
import { createKeys, createRedis, type Keys, quitQuietly, waitReady } from '@llmgw/redis';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiKeyStore, sha256 } from '../auth/api-keys.ts';

/** What a developer's shell may hold that would choose the Redis or prefix: each test says its own. */
const TARGET = new Set([...Object.keys(redisEnvFields), 'KEY_PREFIX']);
const cleanEnv = () =>
  Object.fromEntries(Object.entries(process.env).filter(([k]) => !TARGET.has(k) && !k.startsWith('LLMGW_')));

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `pnpm keys <args>` as pnpm runs it (`node --import tsx … keys.ts`), or a shell line with it. */
function run(args: string[], env: Record<string, string>, shell?: string): Promise<Ran> {
  const cli = ['node', '--import', 'tsx', '--conditions=@llmgw/source', 'apps/api/src/cli/keys.ts'];
  const child: ChildProcess =
    shell === undefined
      ? spawn(process.execPath, [...cli.slice(1), ...args], {
          cwd: REPO_ROOT,
          env: { ...cleanEnv(), ...env },
        })
      : spawn('bash', ['-o', 'pipefail', '-c', shell.replace('$KEYS', [...cli, ...args].join(' '))], {
          cwd: REPO_ROOT,
          env: { ...cleanEnv(), ...env },
        });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => {
    stdout += d;
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

let redis: Redis;
const prefixes: string[] = [];
const dirs: string[] = [];
beforeAll(async () => {
  redis = createRedis(inject('redisUrl'), 'command', 'keys-cli-test');
  await waitReady(redis);
});
/**
 * Users of the tests that count on the CLI finding a stack: should it not, it writes under the
 * deployments' default prefix on the default Redis, which the cleanup then searches too.
 */
const strays: string[] = [];
afterAll(async () => {
  const defaults = createKeys('llmgw');
  for (const hash of await redis.smembers(defaults.apiKeys)) {
    if (!strays.includes((await redis.hget(defaults.apiKey(hash), 'user_id')) ?? '')) continue;
    await redis.multi().del(defaults.apiKey(hash)).srem(defaults.apiKeys, hash).exec();
  }
  for (const prefix of prefixes) {
    for await (const batch of redis.scanStream({ match: `${prefix}:*`, count: 1000 }))
      if (batch.length > 0) await redis.del(...batch);
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await quitQuietly(redis);
});

/** A key prefix of the test's own (removed at the end) and its keys. */
function fresh(): { prefix: string; keys: Keys; store: ApiKeyStore } {
  const prefix = `test-${randomUUID()}`;
  prefixes.push(prefix);
  const keys = createKeys(prefix);
  return { prefix, keys, store: new ApiKeyStore(redis, keys, 0) };
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'llmgw-keys-cli-'));
  dirs.push(d);
  return d;
}

/** A child that runs until killed: a `pnpm start` stand-in that is alive, for the state file. */
function liveProcess(): { pid: number; kill(): void } {
  const child = spawn('sleep', ['120'], { stdio: 'ignore' });
  return { pid: child.pid!, kill: () => child.kill('SIGKILL') };
}

function stateFile(stacks: DevStack[]): string {
  const file = join(tempDir(), 'state.json');
  writeFileSync(file, JSON.stringify({ stacks }));
  return file;
}

const devStack = (pid: number, prefix: string, url = inject('redisUrl')): DevStack => ({
  pid,
  started_at: Date.now(),
  api: `http://127.0.0.1:${8000 + (pid % 1000)}`,
  redis: url,
  redis_env: { REDIS_URL: url },
  key_prefix: prefix,
});

const KEY = /^(llmgw_\S+)$/m;

describe('pnpm keys', () => {
  it('revoke by the key: prints the id and user, never the key; an unknown key is not echoed either', async () => {
    const { prefix, keys, store } = fresh();
    const env = { REDIS_URL: inject('redisUrl'), KEY_PREFIX: prefix };
    const created = await run(['create', '--user', 'alice', '--tier', 'pro'], env);
    expect(created.code).toBe(0);
    const secret = KEY.exec(created.stdout)?.[1];
    expect(secret).toBeDefined();
    const id = `key_${sha256(secret!).slice(0, 12)}`;
    expect(created.stdout).toContain(`id ${id}  user alice  tier pro`);

    const revoked = await run(['revoke', secret!], env);
    expect(revoked).toEqual({ code: 0, stdout: `revoked ${id} (user alice)\n`, stderr: '' });
    expect(await redis.hget(keys.apiKey(sha256(secret!)), 'revoked')).toBe('1');
    expect((await store.lookup(secret!))?.revoked).toBe(true);

    const unknownSecret = `llmgw_${randomUUID()}`;
    const notFound = await run(['revoke', unknownSecret], env);
    expect(notFound.code).toBe(2);
    expect(notFound.stdout).toBe('');
    expect(notFound.stderr).toBe(`no such key (Redis ${inject('redisUrl')}, key prefix ${prefix})\n`);
    // An id is no secret: named, so a typo shows.
    const noId = await run(['revoke', 'key_000000000000'], env);
    expect(noId.code).toBe(2);
    expect(noId.stderr).toBe(
      `no such key: key_000000000000 (Redis ${inject('redisUrl')}, key prefix ${prefix})\n`,
    );
  }, 30_000);

  it('create with a name, an expiry, a model allowlist, own limits, a budget and metadata; rotate under the same id', async () => {
    const { prefix, store } = fresh();
    const env = { REDIS_URL: inject('redisUrl'), KEY_PREFIX: prefix };
    const before = Date.now();
    const created = await run(
      [
        'create',
        '--user',
        'bob',
        '--tier',
        'pro',
        '--name',
        'ci bot',
        '--expires-in',
        '30d',
        '--models',
        'sim-llama-3-8b, sim-qwen-2.5-7b',
        '--tpm',
        '5000',
        '--rpm',
        '20',
        '--monthly-budget',
        '1000000',
        '--meta',
        'owner=platform',
        '--meta',
        'ticket=OPS-1',
      ],
      env,
    );
    expect(created.code, created.stderr).toBe(0);
    const secret = KEY.exec(created.stdout)![1]!;
    const record = (await store.lookup(secret))!;
    expect(record).toMatchObject({
      userId: 'bob',
      tier: 'pro',
      name: 'ci bot',
      models: ['sim-llama-3-8b', 'sim-qwen-2.5-7b'],
      limits: { tokens_per_min: 5000, requests_per_min: 20 },
      monthlyBudget: 1_000_000,
      metadata: { owner: 'platform', ticket: 'OPS-1' },
    });
    expect(record.expiresAt! - before).toBeGreaterThanOrEqual(30 * 86_400_000);
    expect(record.expiresAt! - before).toBeLessThan(30 * 86_400_000 + 60_000);
    const listed = await run(['list'], env);
    expect(listed.stdout).toMatch(new RegExp(`${record.id}  bob .* ci bot .* expires 20`));

    const rotated = await run(['rotate', record.id, '--grace', '60'], env);
    expect(rotated.code, rotated.stderr).toBe(0);
    const next = KEY.exec(rotated.stdout)![1]!;
    expect(next).not.toBe(secret);
    expect(rotated.stdout).toContain(`id ${record.id}  user bob: the old key works for 60 s more`);
    const current = (await store.lookup(next))!;
    expect(current).toMatchObject({ id: record.id, name: 'ci bot' });
    expect(current.superseded).toBeUndefined();
    expect(await store.lookup(secret)).toMatchObject({ superseded: true });

    // Bad flags: refused with the field named, nothing created.
    const bad = await run(['create', '--user', 'bob', '--tpm', '-5'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^limits\.tokens_per_min: /);
    expect((await store.list()).length).toBe(1);
  }, 30_000);

  it('`list | head`: the reader leaving ends the listing quietly, exit 0', async () => {
    const { prefix, store } = fresh();
    // More than a pipe holds (64 KiB, ~80 bytes a line): the CLI is still writing when head exits.
    await Promise.all(Array.from({ length: 1200 }, (_, i) => store.create(`user-${i}`, 'free')));
    const env = { REDIS_URL: inject('redisUrl'), KEY_PREFIX: prefix };
    const res = await run(['list'], env, '$KEYS | head -n 3');
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout.split('\n')).toHaveLength(4);
    expect(res.stdout).toMatch(/^key_\w{12} {2}user-\d+/);
  }, 30_000);

  describe('which Redis and prefix, with none set', () => {
    it('a running pnpm start (its dev-state file): its Redis and prefix, and a line on stderr that says so', async () => {
      const { prefix, keys } = fresh();
      const stack = liveProcess();
      try {
        const file = stateFile([devStack(stack.pid, prefix)]);
        const [alice, bob] = [`alice-${randomUUID()}`, `bob-${randomUUID()}`];
        strays.push(alice, bob);
        const res = await run(['create', '--user', alice, '--tier', 'pro'], { LLMGW_DEV_STATE_FILE: file });
        expect(res.code).toBe(0);
        const secret = KEY.exec(res.stdout)?.[1];
        expect(await redis.hget(keys.apiKey(sha256(secret!)), 'user_id')).toBe(alice);
        expect(res.stderr).toBe(
          `pnpm keys: the dev stack at ${devStack(stack.pid, prefix).api} (Redis ${inject('redisUrl')}, key prefix ${prefix}); set REDIS_URL or KEY_PREFIX for another\n`,
        );
        // --quiet: the key alone, for scripts.
        const quiet = await run(['create', '--user', bob, '--quiet'], { LLMGW_DEV_STATE_FILE: file });
        expect(quiet.stderr).toBe('');
        expect(quiet.stdout).toMatch(/^llmgw_\S+\n$/);
        expect(await redis.hget(keys.apiKey(sha256(quiet.stdout.trim())), 'user_id')).toBe(bob);
      } finally {
        stack.kill();
      }
    }, 30_000);

    it('a variable set wins over the state file', async () => {
      const mine = fresh();
      const stack = liveProcess();
      try {
        const file = stateFile([devStack(stack.pid, 'llmgw-dev', 'redis://127.0.0.1:1')]);
        const res = await run(['create', '--user', 'carol', '--quiet'], {
          LLMGW_DEV_STATE_FILE: file,
          REDIS_URL: inject('redisUrl'),
          KEY_PREFIX: mine.prefix,
        });
        expect(res.code).toBe(0);
        expect(await redis.hget(mine.keys.apiKey(sha256(res.stdout.trim())), 'user_id')).toBe('carol');
        expect(res.stderr).toBe('');
      } finally {
        stack.kill();
      }
    }, 30_000);

    it("a stack whose pnpm start is gone is not used: the deployments' defaults", async () => {
      const { prefix } = fresh();
      const gone = liveProcess();
      gone.kill();
      await new Promise((r) => setTimeout(r, 100));
      const file = stateFile([devStack(gone.pid, prefix, 'redis://127.0.0.1:1')]);
      // A read only (revoke of an id nobody has): on a shared Redis, nothing is written under `llmgw`.
      const res = await run(['revoke', 'key_000000000000'], { LLMGW_DEV_STATE_FILE: file });
      expect(res.code).toBe(2);
      expect(res.stderr).toContain('redis://127.0.0.1:6379');
      expect(res.stderr).not.toContain('127.0.0.1:1');
      expect(res.stderr).not.toContain(prefix);
    }, 30_000);

    it('two running stacks on different prefixes: refuses, naming both, until one is chosen', async () => {
      const a = fresh();
      const b = fresh();
      const [sa, sb] = [liveProcess(), liveProcess()];
      try {
        const file = stateFile([devStack(sa.pid, a.prefix), devStack(sb.pid, b.prefix)]);
        // A read: were the file not read, it would list the default prefix, writing nothing there.
        const res = await run(['list'], { LLMGW_DEV_STATE_FILE: file });
        expect(res.code).toBe(2);
        expect(res.stdout).toBe('');
        expect(res.stderr).toContain('2 dev stacks run, on different Redis or key prefixes');
        expect(res.stderr).toContain(`key prefix ${a.prefix} (pnpm start, pid ${sa.pid})`);
        expect(res.stderr).toContain(`key prefix ${b.prefix} (pnpm start, pid ${sb.pid})`);
        expect(res.stderr).toContain('set REDIS_URL and KEY_PREFIX');
      } finally {
        sa.kill();
        sb.kill();
      }
    }, 30_000);
  });
});
