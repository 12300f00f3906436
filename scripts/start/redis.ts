import { redisReachable, redisServerAvailable } from '@llmgw/devkit';
import type { StartEnv } from './env.ts';
import { say } from './log.ts';
import type { Stack } from './stack.ts';

/** REDIS_URL if a Redis answers there, else a private redis-server from the PATH: its URL. */
export async function chooseRedis(env: StartEnv, stack: Stack): Promise<string> {
  if (await redisReachable(env.REDIS_URL)) {
    say(`using Redis at ${env.REDIS_URL}, key prefix ${env.KEY_PREFIX}`);
    return env.REDIS_URL;
  }
  if (!redisServerAvailable())
    throw new Error(
      `no Redis answers at ${env.REDIS_URL} and redis-server is not on the PATH.\n` +
        'Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis),\n' +
        'point REDIS_URL at one, or run the containerised stack: docker compose up -d',
    );
  const { url } = await stack.startRedis();
  say(`no Redis at ${env.REDIS_URL}; started redis-server at ${url}`);
  return url;
}
