import { describe } from 'vitest';
import { coreScenarios } from './core-scenarios.ts';
import { sentinelTopology } from './topologies.ts';

/** On Redis Sentinel: a primary, a replica and three sentinels of the test's own. */
describe('on Redis Sentinel', () => coreScenarios(sentinelTopology()));
