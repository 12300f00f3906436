import { type Keys, withScripts } from '@llmgw/redis';
import type { Redis } from 'ioredis';
import type { Rendition } from '../wire/rendition.ts';

/** What the gateway keeps about a job besides its events: who owns it and how to render it. */
export interface JobRecord {
  id: string;
  userId: string;
  /** The API key it came with (public id); absent without one (trusted_headers). */
  keyId?: string;
  model: string;
  /** Epoch ms, when it was enqueued. */
  createdAt: number;
  rendition: Rendition;
  /** Submitted with `Prefer: respond-async`: never cancelled for want of a follower. */
  async: boolean;
  /** Whether the request asked for a stream (an idempotent retry answers the same way). */
  stream: boolean;
}

/** A user's job list keeps this long (the Idempotency-Key window). */
export const USER_JOBS_TTL_MS = 24 * 3600_000;
/** …and at most this many jobs. */
const USER_JOBS_MAX = 1000;

export interface JobRecordsOptions {
  redis: Redis;
  keys: Pick<Keys, 'job' | 'userJobs'>;
  /** How long a record lives before its job's events renew it: queue timeout + JOB_RESULT_TTL_S. */
  ttlMs: number;
}

/** The job records (keys.job) and each user's recent jobs (keys.userJobs). */
export class JobRecords {
  constructor(private readonly opts: JobRecordsOptions) {}

  /**
   * One round trip: the record and the user's index, one script each (their keys are in different
   * slots on a cluster), sent together.
   */
  async create(rec: JobRecord): Promise<void> {
    const { redis, keys, ttlMs } = this.opts;
    const scripts = withScripts(redis);
    await Promise.all([
      scripts.jobRecord(
        keys.job(rec.id),
        ttlMs,
        'user',
        rec.userId,
        ...(rec.keyId !== undefined ? ['key', rec.keyId] : []),
        'model',
        rec.model,
        'created_at',
        rec.createdAt,
        'rendition',
        JSON.stringify(rec.rendition),
        'async',
        rec.async ? 1 : 0,
        'stream',
        rec.stream ? 1 : 0,
      ),
      scripts.userJobsAdd(keys.userJobs(rec.userId), rec.createdAt, rec.id, USER_JOBS_TTL_MS, USER_JOBS_MAX),
    ]);
  }

  /** A job that never reached the queue: its record and its place in the user's list go. */
  async remove(jobId: string, userId: string): Promise<void> {
    const { redis, keys } = this.opts;
    await Promise.all([redis.del(keys.job(jobId)), redis.zrem(keys.userJobs(userId), jobId)]);
  }

  /** The record, or undefined if there is none (never was, or expired). */
  async get(jobId: string): Promise<JobRecord | undefined> {
    const h = await this.opts.redis.hgetall(this.opts.keys.job(jobId));
    if (!h.user || !h.rendition) return undefined;
    return {
      id: jobId,
      userId: h.user,
      ...(h.key !== undefined && { keyId: h.key }),
      model: h.model ?? '',
      createdAt: Number(h.created_at),
      rendition: JSON.parse(h.rendition) as Rendition,
      async: h.async === '1',
      stream: h.stream === '1',
    };
  }

  /** The user's job ids, newest first. */
  async recent(userId: string, limit: number): Promise<string[]> {
    return this.opts.redis.zrevrange(this.opts.keys.userJobs(userId), 0, limit - 1);
  }
}
