import { decodeEvent, type ErrorType, encodeEvent, type JobEvent, type Usage } from '@llmgw/protocol';
import { type Keys, writeJobEvent } from '@llmgw/redis';
import type { Redis } from 'ioredis';

export interface EventLogOptions {
  redis: Redis;
  keys: Pick<Keys, 'jobEvents' | 'jobChannel' | 'job'>;
  /** JOB_RESULT_TTL_S, ms. */
  retainMs: number;
  /** JOB_LOG_MAX_EVENTS. */
  maxEvents: number;
}

/**
 * A job's durable event log (a Redis Stream per job, written by its worker with every publish):
 * what a follower replays before it follows live, and what an asynchronous job's status reads.
 */
export class EventLog {
  constructor(private readonly opts: EventLogOptions) {}

  /** What the worker needs in the job to write the log (ChatJob `log`). */
  get jobSettings(): { retainMs: number; maxEvents: number } {
    return { retainMs: this.opts.retainMs, maxEvents: this.opts.maxEvents };
  }

  /**
   * Every logged event of the job, oldest first. `complete` is false when the log lost its start
   * (trimmed at JOB_LOG_MAX_EVENTS): a generation cannot be replayed from its middle.
   */
  async read(jobId: string): Promise<{ events: JobEvent[]; complete: boolean }> {
    const entries = await this.opts.redis.xrange(this.opts.keys.jobEvents(jobId), '-', '+');
    const events: JobEvent[] = [];
    for (const [, fields] of entries) {
      const ev = fields[1] === undefined ? undefined : decodeEvent(fields[1]);
      if (ev) events.push(ev);
    }
    const first = events[0];
    const complete = !first || first.seq === 0 || (first.type === 'error' && first.gateway === true);
    return { events, complete };
  }

  /**
   * The gateway ends the job itself (deadline, lost, cancelled by its owner): the end goes into
   * the log and out on the live channel, so every follower, now or later, sees the same end.
   * `usage`: what the job used, when the gateway knows (zero for one it took off its queue before
   * it ran); else the worker's own end, if one comes, tells it (foldEvents).
   */
  async end(jobId: string, error: ErrorType, message: string, usage?: Usage): Promise<void> {
    const { redis, keys, retainMs, maxEvents } = this.opts;
    const raw = encodeEvent({
      id: jobId,
      seq: 0,
      attempt: 0,
      type: 'error',
      error,
      message,
      gateway: true,
      ...(usage && { usage }),
    });
    await writeJobEvent(redis, {
      eventsKey: keys.jobEvents(jobId),
      metaKey: keys.job(jobId),
      channel: keys.jobChannel(jobId),
      raw,
      maxEvents,
      renewTtlMs: retainMs,
    });
  }
}
