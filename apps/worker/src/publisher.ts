import type { Logger } from '@llmgw/observability';
import {
  type Delta,
  type DoneEvent,
  type ErrorEvent,
  encodeEvent,
  type JobEvent,
  pushDelta,
  type RequeuedEvent,
} from '@llmgw/protocol';
import { publishJobEvent, writeJobEvent } from '@llmgw/redis';
import type { Redis } from 'ioredis';

type Terminal =
  | Omit<DoneEvent, 'id' | 'seq' | 'attempt'>
  | Omit<ErrorEvent, 'id' | 'seq' | 'attempt'>
  | Omit<RequeuedEvent, 'id' | 'seq' | 'attempt'>;

/** Where a job's events are kept besides the live channel, and how long nobody may follow it. */
export interface Durability {
  /** The job's event log (a Redis Stream) and its meta hash; their TTL renewed as renewsTtl says. */
  log?: { eventsKey: string; metaKey: string; retainMs: number; maxEvents: number };
  /** Nobody following for this long ends the job (onGone); 0: at once; -1: never. */
  graceMs: number;
  /** How much a job holds while Redis refuses its writes (default {@link BACKLOG}). */
  backlog?: Backlog;
}

/**
 * While Redis refuses a job's writes (restarting, failing over, out of memory), the job's events
 * wait in this process, in order, and are written once Redis takes them again: for at most
 * `maxMs` from the first refused write, and at most `maxBytes` of deltas held meanwhile.
 * Past either, the events held are dropped and the job ends `failed` (`internal_error`), because
 * a log with a hole in it can never give the whole answer.
 *
 * 10 s: the api's JOB_SILENCE_TIMEOUT_MS (10 s by default), after which a follower gives up on a
 * silent job anyway, and below the job's lock (JOB_LOCK_MS, 15 s), which this worker cannot renew
 * while Redis is away. 1 MiB of deltas per job: at WORKER_CONCURRENCY 64, at most 64 MiB held.
 */
export const BACKLOG: Backlog = { maxMs: 10_000, maxBytes: 1 << 20 };
export interface Backlog {
  maxMs: number;
  maxBytes: number;
}

/** First retry of a refused write after this long, doubling up to RETRY_MAX_MS. */
const RETRY_FIRST_MS = 50;
const RETRY_MAX_MS = 500;

/**
 * Publishes one job's events on its reply channel, in order, with sequence numbers.
 * With a log, each publish is one Lua call (job-event-2.lua, one round trip): XADD to the job's
 * event log (capped), now and then renew the log's and meta's TTL, PUBLISH; the log is what resume,
 * replay and async results read.
 *
 * Deltas are coalesced without a timer: once per tick per job at most (setImmediate: all the
 * deltas of the backend's reads in one turn of the event loop go out together), and while a
 * publish is in flight, deltas are batched into the next one, sent as soon as the previous one
 * resolves. Low load adds no latency; high load sends fewer, larger messages.
 * Batching keeps their order and merges neighbours of the same kind only (pushDelta).
 *
 * While nothing was published for `heartbeatMs` (a slow backend), a heartbeat goes out, so the
 * api can tell a slow job from a dead worker.
 *
 * Writes go out one at a time, in sequence order, and a write Redis refuses is retried (see
 * {@link BACKLOG}) before anything after it is written: the log never has a hole that a later
 * event papers over. Deltas keep merging meanwhile, so the backlog is one pending batch, not one
 * entry per token. Events that could not be written within the backlog's bounds are dropped,
 * nothing after them but the job's end is written, and that end is an error ({@link lost}).
 */
export class JobPublisher {
  private seq = 0;
  private pending: Delta[] = [];
  private inflight: Promise<void> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private ended = false;
  /** The tail of the write chain: each write starts once the previous one is written (or dropped). */
  private chain: Promise<void> = Promise.resolve();
  /** Writes queued or in flight. */
  private writing = 0;
  /** Since when Redis has refused this job's writes (undefined: it takes them). */
  private refusedSince: number | undefined;
  /** Bytes of deltas pending while a write waits for Redis. */
  private pendingBytes = 0;
  private readonly backlog: Backlog;

  /**
   * Set once events of this job had to be dropped (Redis refused them past the backlog's
   * bounds): why, in words a client can read. The job's log has a hole from then on; its end is
   * written as an error with this message, whatever the caller ends it with.
   */
  lost: string | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly channel: string,
    private readonly jobId: string,
    private readonly attempt: number,
    private readonly log: Logger,
    private readonly heartbeatMs: number,
    private readonly durability: Durability = { graceMs: 0 },
  ) {
    this.backlog = durability.backlog ?? BACKLOG;
  }

  private grace: NodeJS.Timeout | undefined;

  /**
   * Called when nobody has followed the job for its grace (publishes reached no subscriber): its
   * client left and did not come back, or its api process is gone; nobody will read the rest.
   */
  onGone: (() => void) | undefined;

  /**
   * Called when a publish first reaches nobody (the grace starts): the api may have cancelled the
   * job already, its message lost on the way (a control subscriber reconnecting).
   */
  onUnfollowed: (() => void) | undefined;

  /** Called once, when events had to be dropped ({@link lost}): the generation should stop. */
  onLost: (() => void) | undefined;

  started(worker: string): void {
    this.send({ type: 'started', worker });
    this.armHeartbeat();
  }

  delta(d: Delta): void {
    if (this.ended || this.lost) return;
    pushDelta(this.pending, d);
    if (this.refusedSince !== undefined) {
      this.pendingBytes += deltaBytes(d);
      if (this.pendingBytes > this.backlog.maxBytes) {
        this.drop(`more than ${this.backlog.maxBytes} bytes waited for Redis`);
        return;
      }
    }
    if (!this.inflight && !this.tickScheduled) {
      this.tickScheduled = true;
      setImmediate(this.onTick);
    }
  }

  private tickScheduled = false;
  private readonly onTick = () => {
    this.tickScheduled = false;
    if (!this.inflight && !this.ended && this.pending.length > 0) this.flush();
  };

  /**
   * Sends what is pending, then the terminal event; resolves once it is written (or given up on:
   * see {@link lost}).
   */
  async end(event: Terminal): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.heartbeat);
    clearTimeout(this.grace);
    while (this.inflight) await this.inflight;
    if (this.pending.length > 0) await this.publishDeltas();
    await this.send(event);
  }

  private flush(): void {
    this.inflight = this.publishDeltas().finally(() => {
      this.inflight = undefined;
      if (this.pending.length > 0 && !this.ended) this.flush();
    });
  }

  private publishDeltas(): Promise<void> {
    const d = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    this.armHeartbeat();
    if (this.lost) return Promise.resolve();
    return this.send({ type: 'delta', d });
  }

  private armHeartbeat(): void {
    clearTimeout(this.heartbeat);
    if (this.ended) return;
    this.heartbeat = setTimeout(() => {
      // A write still waiting for Redis says more than a heartbeat queued behind it would.
      if (this.writing === 0 && !this.lost) this.send({ type: 'heartbeat' });
      this.armHeartbeat();
    }, this.heartbeatMs);
    this.heartbeat.unref();
  }

  /** Gives up on what Redis did not take: the job's text can no longer be whole. */
  private drop(why: string): void {
    if (this.lost) return;
    this.lost = `events of this job could not be written to Redis (${why}); its answer is incomplete`;
    this.pending = [];
    this.pendingBytes = 0;
    this.log.error({ job_id: this.jobId, reason: why }, 'job_events_lost');
    this.onLost?.();
  }

  private renewedAt = 0;

  /** Not at every delta: at the start, the end, each heartbeat, and every quarter of the TTL. */
  private renewsTtl(type: JobEvent['type']): boolean {
    const now = Date.now();
    const due = now - this.renewedAt > (this.durability.log?.retainMs ?? 0) / 4;
    if (type !== 'delta' || due) {
      this.renewedAt = now;
      return true;
    }
    return false;
  }

  private write(raw: string, renew: boolean): Promise<number> {
    return writeEvent(this.redis, this.channel, raw, this.durability.log, renew);
  }

  /** A publish reached nobody: end the job now, after its grace, or never (asynchronous). */
  private nobodyFollows(): void {
    const { graceMs } = this.durability;
    if (graceMs < 0 || this.grace) return;
    if (graceMs === 0) {
      this.onGone?.();
      return;
    }
    this.log.info({ job_id: this.jobId, grace_ms: graceMs }, 'nobody_following');
    this.grace = setTimeout(() => this.onGone?.(), graceMs);
    this.grace.unref();
    this.onUnfollowed?.();
  }

  private send(body: DistributiveOmit<JobEvent, 'id' | 'seq' | 'attempt'>): Promise<void> {
    const event = { id: this.jobId, seq: this.seq++, attempt: this.attempt, ...body } as JobEvent;
    const renew = this.renewsTtl(event.type);
    this.writing++;
    const written = this.chain.then(() => this.writeInOrder(event, renew)).finally(() => this.writing--);
    this.chain = written;
    return written;
  }

  /** Writes one event, retrying while Redis refuses it within the backlog's bounds. Never rejects. */
  private async writeInOrder(event: JobEvent, renew: boolean): Promise<void> {
    const terminal = event.type === 'done' || event.type === 'error' || event.type === 'requeued';
    let delay = RETRY_FIRST_MS;
    while (true) {
      // After a hole only the end is worth writing, and it says what happened. Checked at every
      // try: the job may lose its events while this write waits.
      if (this.lost && !terminal) return;
      const ev = this.lost && event.type !== 'error' ? this.lostEnd(event) : event;
      try {
        const receivers = await this.write(encodeEvent(ev), renew);
        if (this.refusedSince !== undefined) {
          const waited = Date.now() - this.refusedSince;
          this.log.info({ job_id: this.jobId, waited_ms: waited }, 'publish_recovered');
          this.refusedSince = undefined;
        }
        if (receivers > 0) {
          clearTimeout(this.grace);
          this.grace = undefined;
        } else if (!this.ended) this.nobodyFollows();
        return;
      } catch (err) {
        const now = Date.now();
        if (this.refusedSince === undefined) {
          this.refusedSince = now;
          this.log.warn({ err, job_id: this.jobId, event: event.type }, 'publish_failed_retrying');
        }
        const waited = now - this.refusedSince;
        if (waited >= this.backlog.maxMs) {
          if (terminal) {
            // Nothing more to write: the api declares the job lost once it hears nothing.
            this.log.error(
              { err, job_id: this.jobId, event: event.type, waited_ms: waited },
              'publish_failed',
            );
            this.lost ??= `the end of this job could not be written to Redis within ${waited} ms`;
            return;
          }
          this.drop(`Redis refused them for ${waited} ms`);
          // The end, the one write left, gets a backlog of its own.
          this.refusedSince = undefined;
          return;
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    }
  }

  /** The end of a job that lost events: an error saying so, with the usage of a `done`. */
  private lostEnd(event: JobEvent): JobEvent {
    return {
      id: event.id,
      seq: event.seq,
      attempt: event.attempt,
      type: 'error',
      error: 'internal_error',
      message: this.lost ?? '',
      ...(event.type === 'done' && { usage: event.usage }),
    };
  }
}

/** A delta's size in the backlog (its encoding: text, tool arguments, signatures alike). */
function deltaBytes(d: Delta): number {
  return Buffer.byteLength(JSON.stringify(d));
}

/**
 * The publish and, with a log, the append, in one command (job-event-2.lua: the event's bytes go
 * over the wire once); resolves with the receivers. With `renew`, the log's and the record's TTL
 * too (see renewsTtl).
 */
function writeEvent(
  redis: Redis,
  channel: string,
  raw: string,
  log: Durability['log'],
  renew: boolean,
): Promise<number> {
  if (!log) return publishJobEvent(redis, channel, raw);
  return writeJobEvent(redis, {
    eventsKey: log.eventsKey,
    metaKey: log.metaKey,
    channel,
    raw,
    maxEvents: log.maxEvents,
    renewTtlMs: renew ? log.retainMs : 0,
  });
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
