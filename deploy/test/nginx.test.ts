/**
 * deploy/nginx.conf as it runs in docker compose, with only the upstream addresses and the listen
 * port changed (text substitution): `nginx -t` accepts it, and a real nginx in front of two real
 * api processes (plus a worker and the simulator, against the test Redis) streams, spreads load
 * and survives the death of one api.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  deleteKeysWithPrefix,
  freePort,
  nginxArgs,
  postSSE,
  type SpawnedService,
  spawnService,
} from '@llmgw/devkit';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO_ROOT, type RunningProcess, startProcess, waitForPort } from './support.ts';

const nginxAvailable = spawnSync('nginx', ['-v'], { stdio: 'ignore' }).status === 0;
if (!nginxAvailable)
  console.warn('deploy/test/nginx.test.ts: skipped, no nginx on the PATH (apt-get install nginx)');

const CONF = readFileSync(join(REPO_ROOT, 'deploy/nginx.conf'), 'utf8');

/**
 * The deploy config with api1/api2 → 127.0.0.1 ports, `listen 80` → 127.0.0.1:listenPort and the
 * admin listener's `listen 8080` → 127.0.0.1:adminPort; the
 * access log goes to a file in the prefix instead of /dev/stdout, which nginx cannot open here
 * (node gives a child socketpairs, not pipes, as stdio).
 */
function localNginxConf(
  apiPorts: [number, number],
  listenPort: number,
  prefix: string,
  adminPort = 0,
): string {
  const swaps: [RegExp, string][] = [
    [/(\bserver\s+)api1:8000\b/g, `$1127.0.0.1:${apiPorts[0]}`],
    [/(\bserver\s+)api2:8000\b/g, `$1127.0.0.1:${apiPorts[1]}`],
    [/(\blisten\s+)80\b/g, `$1127.0.0.1:${listenPort}`],
    [/(\blisten\s+)8080\b/g, `$1127.0.0.1:${adminPort || listenPort + 1}`],
    [/(\baccess_log\s+)\/dev\/stdout\b/g, `$1${join(prefix, 'access.log')}`],
  ];
  let conf = CONF;
  for (const [re, to] of swaps) {
    const hits = conf.match(re)?.length ?? 0;
    if (hits !== 1) throw new Error(`deploy/nginx.conf: expected one ${re} to substitute, found ${hits}`);
    conf = conf.replace(re, to);
  }
  return conf;
}

const chat = (content: string, maxTokens = 10) => ({
  messages: [{ role: 'user', content }],
  max_tokens: maxTokens,
});
/** Each request as its own user, so per-user rate limits never interfere. */
const userHeaders = (rid: string) => ({ 'X-User-ID': `nginx-test-${randomUUID()}`, 'X-Request-ID': rid });

/** The simulator's tokens (every one but the first starts with a space), however frames were coalesced. */
function tokensOf(data: string[]): string[] {
  expect(data.at(-1)).toBe('[DONE]');
  const text = data
    .slice(0, -1)
    .map((d) => (JSON.parse(d) as { token: string }).token)
    .join('');
  return text === '' ? [] : text.split(/(?= )/);
}

describe.skipIf(!nginxAvailable)('deploy/nginx.conf', () => {
  it('passes nginx -t', () => {
    const prefix = mkdtempSync(join(tmpdir(), 'llmgw-nginx-t-'));
    try {
      writeFileSync(join(prefix, 'nginx.conf'), localNginxConf([18001, 18002], 18080, prefix));
      const r = spawnSync('nginx', nginxArgs(prefix, ['-t']), { encoding: 'utf8', timeout: 10_000 });
      expect(r.stderr).toContain('test is successful');
      expect(r.status).toBe(0);
    } finally {
      rmSync(prefix, { recursive: true, force: true });
    }
  });

  describe('in front of two api processes', () => {
    const prefix = mkdtempSync(join(tmpdir(), 'llmgw-nginx-'));
    let api1: SpawnedService;
    let api2: SpawnedService;
    let nginx: RunningProcess;
    let base = '';
    let admin = '';
    const adminToken = `admin-${randomUUID()}`;
    const procs: { stop(signal?: NodeJS.Signals): Promise<unknown> }[] = [];
    const keyPrefix = `test-${randomUUID()}`;

    beforeAll(async () => {
      const [simPort, p1, p2, listen, adminPort] = await Promise.all([
        freePort(),
        freePort(),
        freePort(),
        freePort(),
        freePort(),
      ]);
      const env = {
        REDIS_URL: inject('redisUrl'),
        KEY_PREFIX: keyPrefix,
        SIM_PORT: String(simPort),
      };
      // 50 ms between tokens: 10 tokens take ~450 ms, visible through nginx only if it does not buffer.
      const sim = spawnService('sim', { ...env, SIM_TTFT_MS: '10', SIM_ITL_MS: '50' });
      const worker = spawnService('worker', { ...env, WORKER_CONCURRENCY: '16', METRICS_PORT: '0' });
      // trusted_headers: X-User-ID names the caller (no API keys to set up); each request is its own user.
      const apiEnv = { ...env, AUTH_MODE: 'trusted_headers', ADMIN_TOKEN: adminToken };
      api1 = spawnService('api', { ...apiEnv, PORT: String(p1), INSTANCE_ID: 'api1' }, { name: 'api1' });
      api2 = spawnService('api', { ...apiEnv, PORT: String(p2), INSTANCE_ID: 'api2' }, { name: 'api2' });
      procs.push(sim, worker, api1, api2);
      await Promise.all([
        sim.waitFor((l) => l.msg === 'sim_listening'),
        worker.waitFor((l) => l.msg === 'worker_started'),
        api1.waitFor((l) => l.msg === 'api_listening'),
        api2.waitFor((l) => l.msg === 'api_listening'),
      ]);
      writeFileSync(join(prefix, 'nginx.conf'), localNginxConf([p1, p2], listen, prefix, adminPort));
      nginx = startProcess('nginx', 'nginx', nginxArgs(prefix));
      procs.push(nginx);
      await Promise.all([waitForPort(listen), waitForPort(adminPort)]);
      base = `http://127.0.0.1:${listen}`;
      admin = `http://127.0.0.1:${adminPort}`;
    }, 60_000);

    afterAll(async () => {
      // nginx by SIGTERM (a killed master leaves its worker processes behind), the rest at once.
      await Promise.all(procs.map((p) => p.stop(p === nginx ? 'SIGTERM' : 'SIGKILL')));
      rmSync(prefix, { recursive: true, force: true });
      await deleteKeysWithPrefix(inject('redisUrl'), keyPrefix);
    });

    const handledBy = (api: SpawnedService, rid: string) =>
      api.lines.some((l) => l.msg === 'request_completed' && l.request_id === rid);

    it('streams tokens as they are generated, with the request id passed through', async () => {
      const rid = `nginx-stream-${randomUUID()}`;
      const res = await postSSE(`${base}/chat`, chat('stream me through nginx'), {
        headers: userHeaders(rid),
      });
      expect(res.status).toBe(200);
      expect(res.headers['x-request-id']).toBe(rid);
      expect(tokensOf(res.data)).toHaveLength(10);
      // First token frame vs last one: ~450 ms apart when frames pass one by one; a buffering
      // proxy would deliver them together at the end.
      const spread = res.times[res.times.length - 2]! - res.times[0]!;
      expect(spread).toBeGreaterThanOrEqual(300);
      await expect.poll(() => handledBy(api1, rid) || handledBy(api2, rid), { timeout: 5000 }).toBe(true);
    });

    it('spreads requests over both apis', async () => {
      const rids = Array.from({ length: 8 }, (_, i) => `nginx-spread-${i}-${randomUUID()}`);
      const results = await Promise.all(
        rids.map((rid, i) => postSSE(`${base}/chat`, chat(`spread ${i}`, 4), { headers: userHeaders(rid) })),
      );
      for (const r of results) {
        expect(r.status).toBe(200);
        expect(tokensOf(r.data)).toHaveLength(4);
      }
      await expect
        .poll(() => rids.filter((rid) => handledBy(api1, rid) || handledBy(api2, rid)).length, {
          timeout: 5000,
        })
        .toBe(rids.length);
      expect(rids.filter((rid) => handledBy(api1, rid)).length).toBeGreaterThan(0);
      expect(rids.filter((rid) => handledBy(api2, rid)).length).toBeGreaterThan(0);
    });

    it('keeps public clients away from /metrics and /admin, and rejects bodies over 1 MiB', async () => {
      for (const path of ['/metrics', '/admin', '/admin/queues/api/queues']) {
        const res = await fetch(`${base}${path}`);
        expect(res.status, path).toBe(404);
        expect(await res.json()).toMatchObject({ error: 'not_found' });
      }
      const big = await fetch(`${base}/chat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(chat('x'.repeat(1024 * 1024 + 1))),
      });
      expect(big.status).toBe(413);
      expect(await big.json()).toMatchObject({ error: 'payload_too_large' });
    });

    it('takes a batch input file over 1 MiB on /v1/files and gives it back byte for byte; a far larger one is 400', async () => {
      const user = { 'X-User-ID': `nginx-files-${randomUUID()}` };
      const bytes = Buffer.alloc(3 * 1024 * 1024 + 7, `${'x'.repeat(999)}\n`); // 3,146 lines
      const form = new FormData();
      form.append('purpose', 'batch');
      form.append('file', new Blob([bytes]), 'input.jsonl');
      const up = await fetch(`${base}/v1/files`, { method: 'POST', headers: user, body: form });
      expect(up.status).toBe(200);
      const { id } = (await up.json()) as { id: string };
      const back = await fetch(`${base}/v1/files/${id}/content`, { headers: user });
      expect(Buffer.from(await back.arrayBuffer()).equals(bytes)).toBe(true);
      // Over nginx's own limit (201m): refused by the declared length alone, in the api's shape.
      const huge = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(`${base}/v1/files`, {
          method: 'POST',
          headers: {
            ...user,
            'content-type': 'multipart/form-data; boundary=b',
            'content-length': String(202 * 1024 * 1024),
          },
        });
        req.on('response', (res) => {
          let body = '';
          res.on('data', (d: Buffer) => {
            body += d;
          });
          res.on('end', () => {
            resolve({ status: res.statusCode ?? 0, body });
            req.destroy();
          });
        });
        req.on('error', reject);
        req.write('--b\r\n');
      });
      expect(huge.status).toBe(400);
      expect(JSON.parse(huge.body)).toMatchObject({
        error: { param: 'file', type: 'invalid_request_error' },
      });
    });

    it('serves /admin (API, login, Bull Board) on the admin listener only, and nothing else there', async () => {
      const bearer = { Authorization: `Bearer ${adminToken}` };
      const stats = await fetch(`${admin}/admin/queues/stats`, { headers: bearer });
      expect(stats.status).toBe(200);
      expect(stats.headers.get('content-type')).toContain('application/json');
      // The api's own auth still applies behind the admin listener.
      expect((await fetch(`${admin}/admin/queues/stats`)).status).toBe(401);
      const login = await fetch(`${admin}/admin/login`);
      expect(login.status).toBe(200);
      expect(await login.text()).toContain('action="/admin/login"');
      const board = await fetch(`${admin}/admin/queues`, { headers: bearer });
      expect(board.status).toBe(200);
      expect(board.headers.get('content-type')).toContain('text/html');
      // Same token, public listener: nginx's 404, the api never asked.
      const outside = await fetch(`${base}/admin/queues/stats`, { headers: bearer });
      expect(outside.status).toBe(404);
      expect(await outside.json()).toMatchObject({ error: 'not_found' });
      for (const path of ['/chat', '/v1/models', '/metrics', '/health']) {
        const res = await fetch(`${admin}${path}`);
        expect(res.status, path).toBe(404);
        expect(await res.json()).toMatchObject({ error: 'not_found' });
      }
    });

    it('sends every request to the surviving api when one is killed', async () => {
      expect(await api1.stop('SIGKILL')).toBe('SIGKILL');
      const rids = Array.from({ length: 6 }, (_, i) => `nginx-failover-${i}-${randomUUID()}`);
      // One at a time: with least_conn and no open streams, nginx would pick api1 for about half of
      // them; each must be re-sent to api2 (connection refused: nothing reached api1).
      for (const [i, rid] of rids.entries()) {
        const res = await postSSE(`${base}/chat`, chat(`failover ${i}`, 3), { headers: userHeaders(rid) });
        expect(res.status, rid).toBe(200);
        expect(tokensOf(res.data)).toHaveLength(3);
      }
      await expect.poll(() => rids.filter((rid) => handledBy(api2, rid)).length, { timeout: 5000 }).toBe(6);
      // nginx's access log (JSON) shows the retries: tried api1, then api2 answered. After
      // max_fails=3 errors it stops trying api1 for fail_timeout (30 s).
      const access = readFileSync(join(prefix, 'access.log'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => typeof l.request_id === 'string' && rids.includes(l.request_id));
      expect(access).toHaveLength(6);
      const retried = access.filter((l) => String(l.upstream_addr).includes(','));
      expect(retried.length).toBeGreaterThan(0);
      for (const l of retried) expect(String(l.upstream_status)).toMatch(/^502, 200$/);
    });
  });
});
