import { randomUUID } from 'node:crypto';
import { type AddressInfo, createServer } from 'node:net';
import { deleteKeysWithPrefix, freePort, postSSE, spawnService } from '@llmgw/devkit';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { seedTokens } from './testing/direct.ts';

describe('entry files as real processes', () => {
  const stopAll: (() => Promise<unknown>)[] = [];
  const prefix = `test-${randomUUID()}`;
  afterAll(async () => {
    await Promise.all(stopAll.map((s) => s()));
    await deleteKeysWithPrefix(inject('redisUrl'), prefix);
  });

  it('a bad variable stops the api with one line naming it, exit 1', async () => {
    const api = spawnService('api', { PORT: 'eighty' });
    expect(await api.exited).toBe(1);
    const text = api.lines.map((l) => String(l.msg)).join('\n');
    expect(text).toMatch(/^invalid environment variable PORT: .*"eighty"/m);
  });

  it('a taken PORT stops the api with one line naming it (no stack trace), exit 1', async () => {
    const blocker = createServer();
    const port = await new Promise<number>((resolve) =>
      blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as AddressInfo).port)),
    );
    try {
      const api = spawnService('api', {
        REDIS_URL: inject('redisUrl'),
        KEY_PREFIX: prefix,
        PORT: String(port),
        HOST: '127.0.0.1',
      });
      expect(await api.exited).toBe(1);
      const fatal = api.lines.filter((l) => l.level === 'fatal');
      expect(fatal).toHaveLength(1);
      expect(fatal[0]).toMatchObject({ msg: 'startup_failed' });
      expect(String(fatal[0]!.err)).toBe(`port ${port} is in use: set PORT to a free port (0: any)`);
      expect(api.lines.some((l) => String(l.msg).includes('    at '))).toBe(false);
      expect(api.lines.some((l) => l.msg === 'api_listening')).toBe(false);
    } finally {
      blocker.close();
    }
  });

  it('sim + worker + api stream a chat, then each exits 0 on SIGTERM', async () => {
    const [simPort, apiPort] = await Promise.all([freePort(), freePort()]);
    const env = {
      REDIS_URL: inject('redisUrl'),
      KEY_PREFIX: prefix,
      SIM_PORT: String(simPort),
    };
    const sim = spawnService('sim', { ...env, SIM_TTFT_MS: '5', SIM_ITL_MS: '2' });
    const worker = spawnService('worker', { ...env, METRICS_PORT: '0' });
    const api = spawnService('api', { ...env, PORT: String(apiPort), AUTH_MODE: 'trusted_headers' });
    const procs = [sim, worker, api];
    stopAll.push(...procs.map((p) => () => p.stop('SIGKILL')));
    await Promise.all([
      sim.waitFor((l) => l.msg === 'sim_listening'),
      worker.waitFor((l) => l.msg === 'worker_started'),
      api.waitFor((l) => l.msg === 'api_listening'),
    ]);

    const res = await postSSE(
      `http://127.0.0.1:${apiPort}/chat`,
      {
        messages: [{ role: 'user', content: 'hello from a real process' }],
        max_tokens: 6,
      },
      { headers: { 'x-user-id': 'process-test' } },
    );
    expect(res.status).toBe(200);
    expect(seedTokens(res.data)).toHaveLength(6);

    // JSON logs on stdout, one request id across both processes.
    const rid = res.headers['x-request-id'];
    expect(await api.waitFor((l) => l.msg === 'request_completed' && l.request_id === rid)).toMatchObject({
      service: 'api',
      status: 200,
      route: '/chat',
    });
    await worker.waitFor((l) => l.msg === 'job_completed' && l.request_id === rid);

    expect(await Promise.all(procs.map((p) => p.stop('SIGTERM')))).toEqual([0, 0, 0]);
  });
});
