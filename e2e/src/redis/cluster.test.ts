import { describe } from 'vitest';
import { coreScenarios } from './core-scenarios.ts';
import { clusterTopology } from './topologies.ts';

/** On Redis Cluster: three masters and three replicas of the test's own. */
describe('on Redis Cluster', () => coreScenarios(clusterTopology()));
