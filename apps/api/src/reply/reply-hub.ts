import type { Logger } from '@llmgw/observability';
import { decodeEvent } from '@llmgw/protocol';
import type { Redis } from 'ioredis';
import { JobSubscription } from './subscription.ts';

export interface ReplyHubOptions {
  /** A dedicated subscriber connection. */
  subscriber: Redis;
  channel: string;
  log: Logger;
  /** A job that has streamed text and then is silent for longer than this is declared lost. */
  silenceTimeoutMs: number;
  /**
   * A started job silent before its first token gets this long: if its worker died, BullMQ
   * re-runs it on another worker once its lock expires, and the client can still take that run.
   */
  recoveryTimeoutMs: number;
  /**
   * A job of ours is generating for nobody (its client left, or its stream was ended by the
   * watchdog before a re-run): stop it, so it does not hold a GPU slot.
   */
  onOrphan?: (jobId: string) => void;
}

/**
 * One SUBSCRIBE per api process: the process's own reply channel, subscribed once at start,
 * before any job is enqueued (pub/sub keeps no history). Events are routed to the open
 * {@link JobSubscription} by job id. A watchdog ends subscriptions whose job went silent.
 */
export class ReplyHub {
  private readonly subs = new Map<string, JobSubscription>();
  private watchdog: NodeJS.Timeout | undefined;
  /** Orphans already reported, so one job's token stream triggers one cancel. */
  private readonly orphans = new Set<string>();

  constructor(private readonly opts: ReplyHubOptions) {}

  get channel(): string {
    return this.opts.channel;
  }

  async start(): Promise<void> {
    const { subscriber, channel } = this.opts;
    subscriber.on('message', (ch: string, raw: string) => {
      if (ch !== channel) return;
      const ev = decodeEvent(raw);
      if (!ev) {
        this.opts.log.warn({ channel }, 'undecodable_event');
        return;
      }
      const sub = this.subs.get(ev.id);
      if (sub) sub.deliver(ev);
      else if ((ev.type === 'started' || ev.type === 'delta') && !this.orphans.has(ev.id)) {
        this.orphans.add(ev.id);
        if (this.orphans.size > 10_000) this.orphans.clear();
        this.opts.onOrphan?.(ev.id);
      }
    });
    await subscriber.subscribe(channel);
    const tick = Math.min(1000, Math.max(50, Math.floor(this.opts.silenceTimeoutMs / 4)));
    this.watchdog = setInterval(() => this.checkSilence(), tick);
    this.watchdog.unref();
  }

  /** Registers interest in a job's events; call before enqueueing it. */
  open(jobId: string): JobSubscription {
    const sub = new JobSubscription(jobId, (s) => {
      if (this.subs.get(s.jobId) === s) this.subs.delete(s.jobId);
    });
    this.subs.set(jobId, sub);
    return sub;
  }

  async stop(): Promise<void> {
    clearInterval(this.watchdog);
    try {
      await this.opts.subscriber.unsubscribe(this.opts.channel);
    } catch {
      // Redis may be gone at shutdown; nothing to clean up then.
    }
  }

  private checkSilence(): void {
    const now = Date.now();
    for (const sub of this.subs.values()) {
      const limit = sub.relayedText ? this.opts.silenceTimeoutMs : this.opts.recoveryTimeoutMs;
      if (sub.started && !sub.isEnded && now - sub.lastEventAt > limit) {
        this.opts.log.warn({ job_id: sub.jobId, silent_ms: now - sub.lastEventAt }, 'job_silent');
        sub.giveUp('worker_lost', 'the worker serving this request stopped responding');
      }
    }
  }
}
