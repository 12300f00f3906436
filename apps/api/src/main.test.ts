import { randomUUID } from 'node:crypto';
import { type AddressInfo, createServer } from 'node:net';
import { deleteKeysWithPrefix, spawnService } from '@llmgw/devkit';
import { afterAll, describe, expect, inject, it } from 'vitest';

/** The api's entry file alone (no worker, no simulator); e2e/src/processes/main.test.ts runs all three. */
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
});
