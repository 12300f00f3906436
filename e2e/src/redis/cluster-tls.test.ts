import { describe } from 'vitest';
import { coreScenarios } from './core-scenarios.ts';
import { clusterTopology, secured } from './topologies.ts';

/** On Redis Cluster over TLS (clients, replication, cluster bus) with a password on every node. */
describe('on Redis Cluster over TLS, with a password', () => coreScenarios(clusterTopology(secured)));
