import { postSSE, scanKeys } from '@llmgw/devkit';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { startStack } from './in-process.ts';
import { startSpawnedStack } from './spawned.ts';

const ask = { messages: [{ role: 'user', content: 'hello' }], max_tokens: 3 };

/** What every test relies on: a stack serves a chat, and leaves no key behind once closed. */
describe('the stack builders', () => {
  it('in process: a chat with the stack key; close() stops it and removes every key under its prefix', async () => {
    const stack = await startStack({ sim: { ttftMs: 1, itlMs: 1 } });
    onTestFinished(() => stack.close());
    expect(stack.prefix).toMatch(/^test-[0-9a-f-]{36}$/);
    const res = await stack.chat(ask);
    expect(res.status).toBe(200);
    expect(res.data.at(-1)).toBe('[DONE]');
    expect((await scanKeys(stack.redisUrl, `${stack.prefix}:*`)).length).toBeGreaterThan(0);

    await stack.close();
    await stack.close();
    expect(await scanKeys(stack.redisUrl, `${stack.prefix}:*`)).toEqual([]);
  });

  it('spawned: a key it created admits a chat; close() ends every process and removes every key under its prefix', async () => {
    const stack = await startSpawnedStack({
      redisUrl: inject('redisUrl'),
      sim: { SIM_TTFT_MS: '1', SIM_ITL_MS: '1' },
    });
    onTestFinished(() => stack.close('SIGKILL'));
    expect(stack.services.map((s) => s.name)).toEqual(['sim', 'worker0', 'api0']);
    const url = `${stack.apiUrls[0]}/chat`;
    expect((await postSSE(url, ask)).status).toBe(401);
    const { headers } = await stack.createKey('free');
    const res = await postSSE(url, ask, { headers });
    expect(res.status).toBe(200);
    expect(res.data.at(-1)).toBe('[DONE]');

    await stack.close();
    expect(await Promise.all(stack.services.map((s) => s.exited))).toEqual([0, 0, 0]);
    expect(await scanKeys(stack.redisUrl, `${stack.prefix}:*`)).toEqual([]);
  });

  it('spawned, kind bench: a bench-<8 hex> prefix', async () => {
    const stack = await startSpawnedStack({
      redisUrl: inject('redisUrl'),
      kind: 'bench',
      workers: 0,
      apis: 0,
    });
    onTestFinished(() => stack.close('SIGKILL'));
    expect(stack.prefix).toMatch(/^bench-[0-9a-f]{8}$/);
    expect(stack.services.map((s) => s.name)).toEqual(['sim']);
  });
});
