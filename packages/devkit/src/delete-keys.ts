import { Redis } from 'ioredis';

/** Runs `fn` on a short-lived connection to `url`. */
async function withRedis<T>(url: string, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

async function scan(
  redis: Redis,
  pattern: string,
  each: (keys: string[]) => Promise<unknown>,
): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await each(keys);
  } while (cursor !== '0');
}

/** Every key matching `pattern` (SCAN, never KEYS: the Redis may be shared). */
export function scanKeys(url: string, pattern: string): Promise<string[]> {
  return withRedis(url, async (redis) => {
    const found: string[] = [];
    await scan(redis, pattern, async (keys) => found.push(...keys));
    return found;
  });
}

/**
 * Deletes every key under `<prefix>:` — a test's cleanup of its own `test-<uuid>` prefix, after
 * the processes that wrote there stopped. Returns how many keys went.
 */
export function deleteKeysWithPrefix(url: string, prefix: string): Promise<number> {
  // A glob character would reach other prefixes.
  if (!/^[A-Za-z0-9_.-]+$/.test(prefix)) throw new Error(`refusing to delete keys under ${prefix}`);
  return withRedis(url, async (redis) => {
    let deleted = 0;
    await scan(redis, `${prefix}:*`, async (keys) => {
      deleted += await redis.unlink(...keys);
    });
    return deleted;
  });
}
