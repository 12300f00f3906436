import type { Redis } from 'ioredis';
import { isCluster } from './connection.ts';
import { withScripts } from './scripts.ts';

export interface JobEventWrite {
  /** The job's event log (a stream) and record: their TTL is renewed with `renewTtlMs`. */
  eventsKey: string;
  metaKey: string;
  channel: string;
  /** The encoded event. */
  raw: string;
  maxEvents: number;
  /** 0: the TTLs stay as they are. */
  renewTtlMs: number;
}

/**
 * Appends one event to a job's log and publishes it on the job's channel, in one script
 * (job-event-2.lua); resolves with the followers the publish reached. On Redis Cluster the
 * publish is sharded (SPUBLISH, the channel in the job's own slot), so the count is of the
 * followers that exist rather than of one node's.
 */
export function writeJobEvent(redis: Redis, w: JobEventWrite): Promise<number> {
  return withScripts(redis).jobEvent(
    w.eventsKey,
    w.metaKey,
    w.raw,
    w.channel,
    w.maxEvents,
    w.renewTtlMs,
    isCluster(redis) ? 1 : 0,
  );
}

/** A job event published with no log (a job refused before it ran): sharded on a Cluster. */
export function publishJobEvent(redis: Redis, channel: string, raw: string): Promise<number> {
  return isCluster(redis) ? (redis.spublish(channel, raw) as Promise<number>) : redis.publish(channel, raw);
}

/** How long an attempt's marker lives: longer than any job can wait or run. */
const ATTEMPT_MARK_MS = 3600_000;

/**
 * Claims attempt `key` of a job before its backend call, on a replicated Redis (Sentinel,
 * Cluster): SET NX, then WAIT for one replica (at most `waitMs`), in one pipeline to the key's
 * node. A write acknowledged by a primary that dies before replicating is lost; BullMQ's move of
 * a job to active can be, and the new primary then hands the job out again under the same
 * attempt number. The marker, on a replica before the generation starts, makes that second run
 * refuse itself. False: this attempt already ran elsewhere.
 */
export async function claimAttempt(redis: Redis, key: string, owner: string, waitMs = 50): Promise<boolean> {
  const res = await redis.pipeline().set(key, owner, 'PX', ATTEMPT_MARK_MS, 'NX').wait(1, waitMs).exec();
  const [err, reply] = res?.[0] ?? [];
  if (err) throw err;
  return reply === 'OK';
}
