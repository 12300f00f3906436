import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { redisEnvFields } from '@llmgw/config';
import { REPO_ROOT } from '@llmgw/devkit';
import { recordUsage } from '@llmgw/redis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildTestApp, type TestApp } from '../testing/app-deps.ts';

/** `pnpm keys usage` as pnpm runs it, on the test's Redis and prefix. */
function keysCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; out: string; err: string }> {
  const target = new Set([...Object.keys(redisEnvFields), 'KEY_PREFIX']);
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !target.has(k) && !k.startsWith('LLMGW_')),
  );
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--conditions=@llmgw/source', 'apps/api/src/cli/keys.ts', ...args],
    { cwd: REPO_ROOT, env: { ...clean, ...env } },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    err += d;
  });
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, out, err })));
}

const ADMIN_TOKEN = 'admin-token-for-cli-usage';
const PRICES_JSON = JSON.stringify({ 'sim-a': { input: 1, output: 2 } });
let t: TestApp;
let env: Record<string, string>;

beforeAll(async () => {
  t = await buildTestApp({ ADMIN_TOKEN, PRICES_JSON });
  env = { REDIS_URL: inject('redisUrl'), KEY_PREFIX: t.prefix, PRICES_JSON };
  const base = { keyId: 'key_cli1', model: 'sim-a', outcome: 'completed' as const, endedAt: Date.now() };
  for (const [userId, promptTokens, completionTokens] of [
    ['alice', 10, 20],
    ['alice', 5, 1],
    ['bob', 100, 200],
  ] as const) {
    const usage = { promptTokens, completionTokens };
    await recordUsage(t.redis, t.keys, { ...base, jobId: randomUUID(), userId, usage }, 400);
  }
});
afterAll(() => t?.close());

describe('pnpm keys usage', () => {
  it('prints what GET /admin/usage answers: the same CSV, the same JSON, and a table', async () => {
    const admin = (q: string, accept = 'application/json') =>
      t.app.request(`/admin/usage${q}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}`, accept } });
    const csv = await keysCli(['usage', '--group-by', 'user,model', '--csv'], env);
    expect(csv.code).toBe(0);
    expect(csv.out).toBe(await (await admin('?group_by=user,model', 'text/csv')).text());
    const json = await keysCli(['usage', '--user', 'alice', '--json'], env);
    expect(JSON.parse(json.out)).toEqual(await (await admin('?user=alice')).json());

    const table = await keysCli(['usage', '--group-by', 'user'], env);
    expect(table.out.split('\n').slice(1, 5)).toEqual([
      'user   requests  prompt_tokens  completion_tokens  total_tokens  cost_usd',
      'alice         2             15                 21            36  0.000057',
      'bob           1            100                200           300    0.0005',
      'total         3            115                221           336  0.000557',
    ]);
  });

  it('a bad flag: the message, exit 2', async () => {
    const bad = await keysCli(['usage', '--group-by', 'week'], env);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--group-by: .*'week' is not one of/);
    expect((await keysCli(['usage', '--start', 'monday'], env)).err).toMatch(
      /--start: start must be a UTC day/,
    );
    expect((await keysCli(['usage', '--team', 'x'], env)).err).toMatch(/unknown or incomplete '--team'/);
  });
});
