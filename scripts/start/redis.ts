import { describeRedisTarget, type RedisTarget } from '@llmgw/config';
import { redisReachable, redisServerAvailable } from '@llmgw/devkit';
import { createRedis, waitReady } from '@llmgw/redis';
import type { StartEnv } from './env.ts';
import { say } from './log.ts';
import type { Stack } from './stack.ts';

/**
 * The stack's Redis, and the variables its services get for it: REDIS_URL if a Redis answers
 * there, else a private redis-server from the PATH. A Sentinel deployment, or a TLS or
 * password-protected primary, is used as configured (the services read the same variables from
 * the environment) and must answer: nothing is started in its place.
 */
export async function chooseRedis(
  env: StartEnv,
  stack: Stack,
): Promise<{ target: RedisTarget; env: Record<string, string> }> {
  const { redis } = env;
  if (redis.mode !== 'single' || redis.tls || redis.password !== undefined) {
    const where = describeRedisTarget(redis);
    if (!(await answers(redis))) throw new Error(`no Redis answers at ${where}`);
    say(`using Redis at ${where}, key prefix ${env.KEY_PREFIX}`);
    return { target: redis, env: {} };
  }
  if (await redisReachable(redis.url)) {
    say(`using Redis at ${redis.url}, key prefix ${env.KEY_PREFIX}`);
    return { target: redis, env: { REDIS_URL: redis.url } };
  }
  if (!redisServerAvailable())
    throw new Error(
      `no Redis answers at ${redis.url} and redis-server is not on the PATH.\n` +
        'Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis),\n' +
        'point REDIS_URL at one, or run the containerised stack: docker compose up -d',
    );
  const { url } = await stack.startRedis();
  say(`no Redis at ${redis.url}; started redis-server at ${url}`);
  return { target: { mode: 'single', url }, env: { REDIS_URL: url } };
}

async function answers(target: RedisTarget): Promise<boolean> {
  const r = createRedis(target, 'command', 'llmgw-start-probe');
  r.on('error', () => {});
  try {
    await waitReady(r, 3000);
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}
