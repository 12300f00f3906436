import { DEFAULT_MODEL } from '@llmgw/config';
import { type RedisClusterHandle, spawnRedisCluster } from '@llmgw/devkit';
import { createKeys } from '@llmgw/redis';
import { Redis } from 'ioredis';
import { describe } from 'vitest';
import { coreScenarios } from './core-scenarios.ts';

/** The master whose slots hold `key` (CLUSTER KEYSLOT, then CLUSTER SLOTS, asked of `port`). */
async function masterOf(port: number, key: string): Promise<number> {
  const r = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
  try {
    const slot = (await r.call('CLUSTER', 'KEYSLOT', key)) as number;
    const ranges = (await r.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
    const owner = ranges.find(([from, to]) => slot >= from && slot <= to);
    if (!owner) throw new Error(`no node serves slot ${slot}`);
    return owner[2][1];
  } finally {
    r.disconnect();
  }
}

/**
 * On Redis Cluster: three masters and three replicas of the test's own. The master killed under
 * load is the one that holds the model's queue.
 */
describe('on Redis Cluster', () => {
  let cluster: RedisClusterHandle;
  let victim = 0;
  coreScenarios({
    name: 'cluster',
    killed: "the queue's master",
    start: async () => {
      cluster = await spawnRedisCluster();
      return cluster.env;
    },
    kill: async () => {
      // Any prefix: the queue's slot depends on its own tag, {chat.<model>}, alone.
      const wait = `x:q:${createKeys('x', { cluster: true }).queueName(DEFAULT_MODEL)}:wait`;
      victim = await masterOf(cluster.servers[0]!.port, wait);
      await cluster.servers.find((s) => s.port === victim)!.kill();
    },
    failedOver: async () => (await cluster.healthy()) && !(await cluster.masterPorts()).includes(victim),
    stop: async () => cluster?.stop(),
  });
});
