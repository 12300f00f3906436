import { DEFAULT_MODEL } from '@llmgw/config';
import {
  makeTestCertificates,
  type RedisClusterHandle,
  type Secured,
  type SentinelGroup,
  spawnRedisCluster,
  spawnSentinelGroup,
} from '@llmgw/devkit';
import { createKeys } from '@llmgw/redis';
import type { Topology } from './core-scenarios.ts';

/** Every node and sentinel over TLS with a certificate made here, and a password on each. */
export const secured = (): Secured => ({ certs: makeTestCertificates(), password: 'test-redis-password-01' });

/**
 * Redis Sentinel: a primary, a replica and three sentinels of the test's own (`secure`: TLS and a
 * password everywhere). The node killed under load is the primary.
 */
export function sentinelTopology(secure?: () => Secured): Topology {
  let group: SentinelGroup;
  let primary = 0;
  return {
    name: secure ? 'sentinel over TLS' : 'sentinel',
    killed: 'the primary',
    start: async () => {
      group = await spawnSentinelGroup(secure?.());
      primary = await group.primaryPort();
      return group.env;
    },
    kill: () => group.servers.find((s) => s.port === primary)!.kill(),
    failedOver: () => group.failedOverFrom(primary),
    stop: async () => group?.stop(),
  };
}

/**
 * Redis Cluster: three masters and three replicas of the test's own (`secure`: TLS for clients,
 * replication and the bus, and a password). The master killed under load is the one that holds
 * the model's queue.
 */
export function clusterTopology(secure?: () => Secured): Topology {
  let cluster: RedisClusterHandle;
  let victim = 0;
  return {
    name: secure ? 'cluster over TLS' : 'cluster',
    killed: "the queue's master",
    start: async () => {
      cluster = await spawnRedisCluster(secure?.());
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
  };
}
