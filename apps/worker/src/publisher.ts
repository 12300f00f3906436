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
import { withScripts } from '@llmgw/redis';
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
}

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
 */
export class JobPublisher {
  private seq = 0;
  private pending: Delta[] = [];
  private inflight: Promise<void> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(
    private readonly redis: Redis,
    private readonly channel: string,
    private readonly jobId: string,
    private readonly attempt: number,
    private readonly log: Logger,
    private readonly heartbeatMs: number,
    private readonly durability: Durability = { graceMs: 0 },
  ) {}

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

  started(worker: string): void {
    this.send({ type: 'started', worker });
    this.armHeartbeat();
  }

  delta(d: Delta): void {
    if (this.ended) return;
    pushDelta(this.pending, d);
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

  /** Sends what is pending, then the terminal event; resolves when it is on the wire. */
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
    this.armHeartbeat();
    return this.send({ type: 'delta', d });
  }

  private armHeartbeat(): void {
    clearTimeout(this.heartbeat);
    if (this.ended) return;
    this.heartbeat = setTimeout(() => {
      this.send({ type: 'heartbeat' });
      this.armHeartbeat();
    }, this.heartbeatMs);
    this.heartbeat.unref();
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

  private async send(body: DistributiveOmit<JobEvent, 'id' | 'seq' | 'attempt'>): Promise<void> {
    const event = { id: this.jobId, seq: this.seq++, attempt: this.attempt, ...body } as JobEvent;
    try {
      const receivers = await this.write(encodeEvent(event), this.renewsTtl(event.type));
      if (receivers > 0) {
        clearTimeout(this.grace);
        this.grace = undefined;
      } else if (!this.ended) this.nobodyFollows();
    } catch (err) {
      // The api notices the gap (sequence numbers) or the silence (heartbeats) and tells its client.
      this.log.warn({ err, job_id: this.jobId, event: body.type }, 'publish_failed');
    }
  }
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
  if (!log) return redis.publish(channel, raw);
  return withScripts(redis).jobEvent(
    log.eventsKey,
    log.metaKey,
    raw,
    channel,
    log.maxEvents,
    renew ? log.retainMs : 0,
  );
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
