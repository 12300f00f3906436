import { type SentinelGroup, spawnSentinelGroup } from '@llmgw/devkit';
import { describe } from 'vitest';
import { coreScenarios } from './core-scenarios.ts';

/** On Redis Sentinel: a primary, a replica and three sentinels of the test's own. */
describe('on Redis Sentinel', () => {
  let group: SentinelGroup;
  let primary = 0;
  coreScenarios({
    name: 'sentinel',
    killed: 'the primary',
    start: async () => {
      group = await spawnSentinelGroup();
      primary = await group.primaryPort();
      return group.env;
    },
    kill: () => group.servers.find((s) => s.port === primary)!.kill(),
    failedOver: () => group.failedOverFrom(primary),
    stop: async () => group?.stop(),
  });
});
