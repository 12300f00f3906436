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
import type { Redis } from 'ioredis';

type Terminal =
  | Omit<DoneEvent, 'id' | 'seq' | 'attempt'>
  | Omit<ErrorEvent, 'id' | 'seq' | 'attempt'>
  | Omit<RequeuedEvent, 'id' | 'seq' | 'attempt'>;

/**
 * Publishes one job's events on its reply channel, in order, with sequence numbers.
 *
 * Deltas are coalesced without a timer: a delta is published at once when no publish is in
 * flight; deltas that arrive meanwhile are batched into the next publish, sent as soon as the
 * previous one resolves. Low load adds no latency; high load sends fewer, larger messages.
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
  ) {}

  /**
   * Called when a publish reached no subscriber: the api process that owns the stream is gone
   * (crashed or restarted), so nobody will read what this job generates.
   */
  onGone: (() => void) | undefined;

  started(worker: string): void {
    this.send({ type: 'started', worker });
    this.armHeartbeat();
  }

  delta(d: Delta): void {
    if (this.ended) return;
    pushDelta(this.pending, d);
    if (!this.inflight) this.flush();
  }

  /** Sends what is pending, then the terminal event; resolves when it is on the wire. */
  async end(event: Terminal): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.heartbeat);
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

  private async send(body: DistributiveOmit<JobEvent, 'id' | 'seq' | 'attempt'>): Promise<void> {
    const event = { id: this.jobId, seq: this.seq++, attempt: this.attempt, ...body } as JobEvent;
    try {
      const receivers = await this.redis.publish(this.channel, encodeEvent(event));
      if (receivers === 0 && !this.ended) this.onGone?.();
    } catch (err) {
      // The api notices the gap (sequence numbers) or the silence (heartbeats) and tells its client.
      this.log.warn({ err, job_id: this.jobId, event: body.type }, 'publish_failed');
    }
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
