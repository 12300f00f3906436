import { describe } from 'vitest';
import { coreScenarios } from './core-scenarios.ts';
import { secured, sentinelTopology } from './topologies.ts';

/**
 * On Redis Sentinel over TLS with a password: the sentinels take the data nodes' TLS settings and
 * password (REDIS_TLS, REDIS_TLS_CA_FILE, REDIS_PASSWORD), and nothing answers in plain text.
 */
describe('on Redis Sentinel over TLS, with a password', () => coreScenarios(sentinelTopology(secured)));
