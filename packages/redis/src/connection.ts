import type { RedisTarget } from '@llmgw/config';
import { Cluster, Redis, type RedisOptions } from 'ioredis';

/**
 * The three kinds of Redis connection a process opens, each with the options its role needs:
 *
 * - `command`: request-path commands and BullMQ producers (`Queue`). Fails fast while Redis is
 *   down (`enableOfflineQueue: false`, one retry), so the api answers 503 instead of hanging;
 *   with `commandTimeoutMs` also while it hangs (up, not answering).
 * - `publisher`: like `command`, auto-pipelined, for the workers' token PUBLISHes only.
 * - `worker`: BullMQ `Worker` connections. BullMQ requires `maxRetriesPerRequest: null`.
 * - `subscriber`: a dedicated pub/sub connection (a subscribed connection can only (un)subscribe);
 *   resubscribes by itself after a reconnect.
 */
export type ConnectionRole = 'command' | 'publisher' | 'worker' | 'subscriber';

export interface ConnectionOptions {
  /**
   * `command` and `publisher` only: a command without a reply after this long is rejected
   * (ioredis `commandTimeout`), so a hung Redis — up but not answering — fails a request instead
   * of holding it. Never on `worker` or `subscriber` connections: their blocking commands
   * (BullMQ's BZPOPMIN, SUBSCRIBE) wait by design.
   */
  commandTimeoutMs?: number;
}

export function redisOptions(role: ConnectionRole, name: string, opts: ConnectionOptions = {}): RedisOptions {
  const common: RedisOptions = {
    connectionName: name,
    // Reconnect forever, at most every 1 s: a Redis restart must heal by itself.
    retryStrategy: (times) => Math.min(times * 100, 1000),
    connectTimeout: 2000,
    // RESP2 keeps replies in the shapes BullMQ's Lua scripts and our code expect.
    protocol: 2,
    // A primary demoted by a failover answers writes with READONLY: reconnect (Sentinel then
    // names the new one) and send the command again.
    reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
  };
  const timeout = opts.commandTimeoutMs === undefined ? {} : { commandTimeout: opts.commandTimeoutMs };
  switch (role) {
    case 'command':
      return { ...common, ...timeout, enableOfflineQueue: false, maxRetriesPerRequest: 1 };
    case 'publisher':
      // PUBLISH only. Auto-pipelining sends every command issued in one event-loop turn in one
      // write: the token publishes of many concurrent streams cost one syscall instead of one
      // each. Never use this connection for MULTI or scripts: mixed with auto-pipelining, ioredis
      // 6 can mismatch replies to callbacks (seen as a crash in the soak test).
      return {
        ...common,
        ...timeout,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        enableAutoPipelining: true,
      };
    case 'worker':
      return { ...common, maxRetriesPerRequest: null };
    case 'subscriber':
      return { ...common, maxRetriesPerRequest: null, autoResubscribe: true };
  }
}

/**
 * The one place every Redis connection of every process is made (api, worker, BullMQ,
 * subscribers, the keys CLI, `pnpm start`): for a URL (`redis://`, `rediss://`) or a target
 * parsed from the environment (@llmgw/config redis-env.ts: a single primary, or Sentinel).
 */
export function createRedis(
  target: string | RedisTarget,
  role: ConnectionRole,
  name: string,
  opts: ConnectionOptions = {},
): Redis {
  const base = redisOptions(role, name, opts);
  if (typeof target === 'string') return new Redis(target, base);
  const auth = {
    ...(target.username !== undefined && { username: target.username }),
    ...(target.password !== undefined && { password: target.password }),
  };
  if (target.mode === 'cluster') return createCluster(target, role, base, auth);
  if (target.mode === 'single') {
    return new Redis(target.url, { ...base, ...auth, ...(target.tls && { tls: target.tls }) });
  }
  return new Redis({
    ...base,
    ...auth,
    sentinels: target.sentinels,
    name: target.name,
    // The sentinels take the same credentials and TLS as the data nodes (issue 22).
    ...(target.username !== undefined && { sentinelUsername: target.username }),
    ...(target.password !== undefined && { sentinelPassword: target.password }),
    ...(target.tls && { tls: target.tls, sentinelTLS: target.tls, enableTLSForSentinelMode: true }),
    // Told of a new primary by the sentinels themselves (+switch-master), not only on a reconnect.
    failoverDetector: true,
    sentinelReconnectStrategy: (times) => Math.min(times * 100, 1000),
  });
}

/**
 * Redis Cluster: the role's options split between the Cluster (offline queue, auto-pipelining,
 * sharded subscribers) and each node's connection. Typed as a Redis: the commands, scripts,
 * pipelines of one slot and pub/sub this gateway uses are the same on both, and BullMQ takes
 * either. Subscribers get sharded pub/sub (SSUBSCRIBE, one connection per shard).
 */
function createCluster(
  target: Extract<RedisTarget, { mode: 'cluster' }>,
  role: ConnectionRole,
  base: RedisOptions,
  auth: Pick<RedisOptions, 'username' | 'password'>,
): Redis {
  const { enableOfflineQueue, enableAutoPipelining, retryStrategy: _, ...node } = base;
  const cluster = new Cluster(target.nodes, {
    redisOptions: { ...node, ...auth, ...(target.tls && { tls: target.tls }) },
    ...(enableOfflineQueue !== undefined && { enableOfflineQueue }),
    ...(enableAutoPipelining === true && { enableAutoPipelining }),
    ...(role === 'subscriber' && { shardedSubscribers: true }),
    // Reconnect forever, at most every 1 s, as a single primary does.
    clusterRetryStrategy: (times) => Math.min(times * 100, 1000),
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    // Over TLS, connect to the names the cluster announces as they are, not to addresses ioredis
    // looked up first: a certificate issued for the name (ElastiCache, MemoryDB) does not match an
    // address. ioredis's README names this `dnsLookup` override for ElastiCache with TLS.
    ...(target.tls && {
      dnsLookup: (address: string, callback: (err: null, address: string) => void) => callback(null, address),
    }),
  });
  return cluster as unknown as Redis;
}

/** Whether a connection is a Redis Cluster one (its job channels are then sharded). */
export function isCluster(redis: Redis): boolean {
  return (redis as unknown as { isCluster?: boolean }).isCluster === true;
}

/** Resolves once the connection is ready, or rejects after `timeoutMs` (startup only). */
export function waitReady(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis not ready after ${timeoutMs} ms (status ${redis.status})`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}

/** Closes a connection without throwing (shutdown paths). */
export async function quitQuietly(redis: Redis): Promise<void> {
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  }
}
