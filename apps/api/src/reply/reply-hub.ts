import type { Logger } from '@llmgw/observability';
import { decodeEvent, type JobEvent } from '@llmgw/protocol';
import { isCluster, type Keys } from '@llmgw/redis';
import type { Redis } from 'ioredis';
import { JobSubscription } from './subscription.ts';

export interface ReplyHubOptions {
  /** A dedicated subscriber connection. */
  subscriber: Redis;
  keys: Pick<Keys, 'jobChannel'>;
  log: Logger;
  /** A job that has streamed text and then is silent for longer than this is declared lost. */
  silenceTimeoutMs: number;
  /**
   * A started job silent before its first token gets this long: if its worker died, BullMQ
   * re-runs it on another worker once its lock expires, and the client can still take that run.
   */
  recoveryTimeoutMs: number;
  /**
   * A job's logged events, oldest first (EventLog.read): what fills a gap in a job's live events,
   * and what a subscription missed while the subscriber connection was away. Without it, a gap
   * ends the job's stream.
   */
  readLog?: (jobId: string) => Promise<readonly JobEvent[]>;
}

/**
 * The api's side of the jobs' live channels, on one subscriber connection: each job publishes on
 * a channel of its own (keys.jobChannel), so any api replica can follow any job — the request
 * that submitted it, a client resuming it elsewhere, a second viewer. A channel is subscribed
 * while at least one {@link JobSubscription} of this process follows the job. A watchdog ends
 * subscriptions whose job went silent.
 *
 * Pub/sub keeps nothing for a subscriber that is away: once the connection is back (Redis
 * restarted, a network blip), every subscription reads what it missed from its job's log.
 *
 * On Redis Cluster the channels are sharded (SSUBSCRIBE, one subscriber per shard, each channel
 * in its job's slot), as the workers publish them (writeJobEvent).
 */
export class ReplyHub {
  private readonly byChannel = new Map<string, Set<JobSubscription>>();
  private watchdog: NodeJS.Timeout | undefined;
  private readonly sharded: boolean;

  constructor(private readonly opts: ReplyHubOptions) {
    this.sharded = isCluster(opts.subscriber);
  }

  /** SUBSCRIBE, or one SSUBSCRIBE per channel on a Cluster (each channel has its own slot). */
  private async subscribe(channels: string[]): Promise<void> {
    const { subscriber } = this.opts;
    if (!this.sharded) await subscriber.subscribe(...channels);
    else await Promise.all(channels.map((ch) => subscriber.ssubscribe(ch)));
  }

  private async unsubscribe(channels: string[]): Promise<void> {
    const { subscriber } = this.opts;
    if (!this.sharded) await subscriber.unsubscribe(...channels);
    else await Promise.all(channels.map((ch) => subscriber.sunsubscribe(ch)));
  }

  /** The channel a job's worker publishes on (the job's `replyTo`). */
  channelOf(jobId: string): string {
    return this.opts.keys.jobChannel(jobId);
  }

  /** The subscriber connection was lost since it was last ready. */
  private disconnected = false;

  start(): void {
    const { subscriber } = this.opts;
    subscriber.on('close', () => {
      this.disconnected = true;
    });
    subscriber.on('ready', () => {
      if (!this.disconnected) return;
      this.disconnected = false;
      void this.catchUp();
    });
    subscriber.on(this.sharded ? 'smessage' : 'message', (ch: string, raw: string) => {
      const subs = this.byChannel.get(ch);
      if (!subs) return;
      const ev = decodeEvent(raw);
      if (!ev) {
        this.opts.log.warn({ channel: ch }, 'undecodable_event');
        return;
      }
      for (const sub of subs) sub.deliver(ev);
    });
    const tick = Math.min(1000, Math.max(50, Math.floor(this.opts.silenceTimeoutMs / 4)));
    this.watchdog = setInterval(() => this.checkSilence(), tick);
    this.watchdog.unref();
  }

  /**
   * Follows a job's events; resolves once its channel is subscribed, so a job enqueued after this
   * misses nothing. `holdLive`: for a job under way, whose log the caller replays first
   * (JobSubscription.replay). Throws if Redis refuses the subscription.
   */
  async open(jobId: string, opts: { holdLive?: boolean } = {}): Promise<JobSubscription> {
    const channel = this.channelOf(jobId);
    const { readLog } = this.opts;
    const sub = new JobSubscription(jobId, (s) => this.drop(channel, s), readLog && (() => readLog(jobId)));
    // Held from the start: a message may arrive in the same read as the SUBSCRIBE reply, before
    // the caller's await resumes.
    if (opts.holdLive) sub.holdLive();
    let subs = this.byChannel.get(channel);
    if (!subs) {
      subs = new Set();
      this.byChannel.set(channel, subs);
    }
    subs.add(sub);
    try {
      await this.subscribe([channel]);
    } catch (err) {
      sub.close();
      throw err;
    }
    return sub;
  }

  /**
   * After a reconnect: once the channels are subscribed again (ioredis resubscribes by itself;
   * this SUBSCRIBE's reply comes after those), every subscription reads its job's log, so what
   * was published meanwhile is delivered, in order, before what comes live.
   */
  private async catchUp(): Promise<void> {
    const channels = [...this.byChannel.keys()];
    if (channels.length === 0 || !this.opts.readLog) return;
    try {
      await this.subscribe(channels);
    } catch {
      // Gone again: the next `ready` catches up.
      return;
    }
    this.opts.log.info({ jobs: channels.length }, 'reply_channels_resubscribed');
    for (const subs of this.byChannel.values()) for (const sub of subs) sub.catchUp();
  }

  async stop(): Promise<void> {
    clearInterval(this.watchdog);
    const channels = [...this.byChannel.keys()];
    this.byChannel.clear();
    if (channels.length === 0) return;
    try {
      await this.unsubscribe(channels);
    } catch {
      // Redis may be gone at shutdown; nothing to clean up then.
    }
  }

  private drop(channel: string, sub: JobSubscription): void {
    const subs = this.byChannel.get(channel);
    if (!subs?.delete(sub) || subs.size > 0) return;
    this.byChannel.delete(channel);
    this.unsubscribe([channel]).catch(() => {});
  }

  private checkSilence(): void {
    const now = Date.now();
    for (const subs of this.byChannel.values()) {
      for (const sub of subs) {
        const limit = sub.relayedText ? this.opts.silenceTimeoutMs : this.opts.recoveryTimeoutMs;
        if (sub.started && !sub.isEnded && now - sub.lastEventAt > limit) {
          this.opts.log.warn({ job_id: sub.jobId, silent_ms: now - sub.lastEventAt }, 'job_silent');
          sub.giveUp('worker_lost', 'the worker serving this request stopped responding');
        }
      }
    }
  }
}
