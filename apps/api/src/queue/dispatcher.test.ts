import { LogCapture, spawnRedisServer, until } from '@llmgw/devkit';
import { createLogger } from '@llmgw/observability';
import { createKeys, createRedis, quitQuietly } from '@llmgw/redis';
import { describe, expect, it } from 'vitest';
import { Dispatcher } from './dispatcher.ts';

describe('Dispatcher', () => {
  it('a model queue first used while Redis is away works once Redis is back, without a restart', async () => {
    const server = await spawnRedisServer();
    const redis = createRedis(server.url, 'command', 'dispatcher-test');
    redis.on('error', () => {});
    const logs = new LogCapture();
    const log = createLogger({ service: 'api', instance: 'test', level: 'debug', destination: logs });
    const dispatcher = new Dispatcher({ redis, keys: createKeys('test-dispatcher'), log });
    try {
      await server.kill();
      // BullMQ's one-time initialisation of the new Queue fails here…
      await expect(dispatcher.waiting('m')).rejects.toThrow();
      expect(await until(() => logs.find('queue_init_failed').length > 0)).toBe(true);
      await server.restart();
      // …and is not kept: the next use makes a new Queue, which answers.
      expect(await until(async () => (await dispatcher.waiting('m').catch(() => -1)) === 0, 10_000)).toBe(
        true,
      );
    } finally {
      await dispatcher.close();
      await quitQuietly(redis);
      await server.stop();
    }
  });
});
