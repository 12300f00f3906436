import {
  type RedisServerHandle,
  redisReachable,
  redisServerAvailable,
  spawnRedisServer,
} from '@llmgw/devkit';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

let spawned: RedisServerHandle | undefined;

/**
 * Tests share one Redis (each test under its own key prefix): REDIS_URL if it answers, else
 * 127.0.0.1:6379, else a private redis-server spawned for this run.
 */
export async function setup(project: TestProject): Promise<void> {
  const candidate = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  if (await redisReachable(candidate)) {
    project.provide('redisUrl', candidate);
    return;
  }
  if (!redisServerAvailable()) {
    throw new Error(
      `no Redis at ${candidate} and no redis-server on the PATH (apt-get install redis-server)`,
    );
  }
  spawned = await spawnRedisServer();
  project.provide('redisUrl', spawned.url);
}

export async function teardown(): Promise<void> {
  await spawned?.stop();
}
