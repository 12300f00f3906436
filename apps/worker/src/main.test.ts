import { randomUUID } from 'node:crypto';
import { type AddressInfo, createServer } from 'node:net';
import { deleteKeysWithPrefix, scanKeys, spawnService } from '@llmgw/devkit';
import { afterAll, describe, expect, inject, it } from 'vitest';

describe('worker entry file as a real process', () => {
  const prefix = `test-${randomUUID()}`;
  afterAll(() => deleteKeysWithPrefix(inject('redisUrl'), prefix));

  it('a taken METRICS_PORT stops it at start, with one line naming it, before it registers', async () => {
    const blocker = createServer();
    const port = await new Promise<number>((resolve) =>
      blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as AddressInfo).port)),
    );
    try {
      const worker = spawnService('worker', {
        REDIS_URL: inject('redisUrl'),
        KEY_PREFIX: prefix,
        METRICS_PORT: String(port),
        METRICS_HOST: '127.0.0.1',
        SIM_PORT: '9',
      });
      expect(await worker.exited).toBe(1);
      const fatal = worker.lines.filter((l) => l.level === 'fatal');
      expect(fatal).toHaveLength(1);
      expect(String(fatal[0]!.err)).toBe(
        `METRICS_PORT ${port} is in use: set METRICS_PORT to a free port (0: any)`,
      );
      expect(worker.lines.some((l) => l.msg === 'worker_started')).toBe(false);
    } finally {
      blocker.close();
    }
    // Not registered, nothing written.
    expect(await scanKeys(inject('redisUrl'), `${prefix}:*`)).toEqual([]);
  });
});
