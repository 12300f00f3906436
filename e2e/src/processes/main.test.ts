import { postSSE } from '@llmgw/devkit';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { type SpawnedStack, startSpawnedStack } from '../stack/spawned.ts';
import { seedTokens } from '../support/direct.ts';

/** The three entry files together; apps/api/src/main.test.ts runs the api's alone. */
describe('entry files as real processes', () => {
  let stack: SpawnedStack | undefined;
  afterAll(() => stack?.close('SIGKILL'));

  it('sim + worker + api stream a chat, then each exits 0 on SIGTERM', async () => {
    // The worker is given no LLM_BASE_URL: it finds the simulator by SIM_PORT, its default.
    stack = await startSpawnedStack({
      redisUrl: inject('redisUrl'),
      sim: { SIM_TTFT_MS: '5', SIM_ITL_MS: '2' },
      api: { AUTH_MODE: 'trusted_headers' },
    });
    const [sim, worker, api] = [stack.sim!, stack.workers[0]!, stack.apis[0]!];

    const res = await postSSE(
      `${stack.apiUrls[0]}/chat`,
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

    expect(await Promise.all([sim, worker, api].map((p) => p.stop('SIGTERM')))).toEqual([0, 0, 0]);
  });
});
