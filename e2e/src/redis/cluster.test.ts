import { DEFAULT_MODEL } from '@llmgw/config';
import { type RedisClusterHandle, spawnRedisCluster } from '@llmgw/devkit';
import { createKeys } from '@llmgw/redis';
import { describe } from 'vitest';
import { coreScenarios } from './core-scenarios.ts';

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
      victim = await cluster.masterOf(wait);
      await cluster.servers.find((s) => s.port === victim)!.kill();
    },
    failedOver: async () => (await cluster.healthy()) && !(await cluster.masterPorts()).includes(victim),
    stop: async () => cluster?.stop(),
  });
});
