import { randomUUID } from 'node:crypto';
import type { Logger } from '@llmgw/observability';
import {
  type ChatJob,
  type ChatMessage,
  type DoneEvent,
  type GenerationParams,
  JOB_VERSION,
  Transcript,
} from '@llmgw/protocol';
import { isTier, type TierLimits, type Tiers, tierLimits } from '../auth/tiers.ts';
import { ApiError, apiErrorFromJob } from '../errors/index.ts';
import type { ApiMetrics } from '../metrics.ts';
import type { ModelRegistry } from '../models/registry.ts';
import type { Dispatcher } from './dispatcher.ts';
import { type FairShare, fairPriority } from './fair-share.ts';
import type { QueueWatch } from './queue-watch.ts';
import type { QuotaBook, Reservation } from './quota.ts';
import type { ReplyHub } from './reply-hub.ts';
import { StreamMeter } from './stream-meter.ts';
import type { SubmittedChat } from './submitted-chat.ts';

export interface ChatRequestInput {
  /** `completion`: a legacy text completion of `prompt` (/v1/completions). */
  kind?: 'chat' | 'completion';
  model: string;
  messages: ChatMessage[];
  prompt?: string;
  params: GenerationParams;
  requestId: string;
  /** performance.now() when the request arrived (metrics, Server-Timing). */
  requestStart: number;
  userId?: string;
  tier?: string;
}

export interface CollectedChat {
  transcript: Transcript;
  done: DoneEvent;
}

export interface ChatServiceOptions {
  hub: ReplyHub;
  dispatcher: Dispatcher;
  models: ModelRegistry;
  watch: QueueWatch;
  log: Logger;
  /** Refuse every tier with 503 server_overloaded when this many jobs already wait for the model. */
  queueMaxWaiting: number;
  /** Per tier: the model's waiting depth from which its requests are refused (shedding.ts). */
  shedAt: Record<string, number>;
  fairShare: FairShare;
  queueTimeoutMs: number;
  tiers: Tiers;
  quota: QuotaBook;
  metrics: ApiMetrics;
}

/** Seconds a client refused for overload is asked to wait before retrying. */
const OVERLOAD_RETRY_AFTER_S = 2;
/** Seconds a client refused because an operator paused the model is asked to wait (maintenance). */
const PAUSED_RETRY_AFTER_S = 30;

/**
 * What both chat endpoints share: admission (model served, queue not over its depth), the job
 * on its model's queue with the reply channel subscribed first, and cancellation when the
 * client leaves.
 */
export class ChatService {
  /** Requests of this process with a job under way (streaming or not). */
  private readonly open = new Set<SubmittedChat>();

  constructor(private readonly opts: ChatServiceOptions) {}

  get openCount(): number {
    return this.open.size;
  }

  /**
   * Shutdown after the grace period: every request still open ends with a `shutting_down` error
   * (an error frame, or a 503) and its job is cancelled, so no GPU works for a closed stream.
   */
  failAll(message: string): void {
    for (const chat of this.open) {
      chat.sub.fail('shutting_down', message);
      this.cancelJob(chat, 'api_shutdown');
    }
  }

  async submit(input: ChatRequestInput): Promise<SubmittedChat> {
    try {
      return await this.admit(input);
    } catch (err) {
      if (err instanceof ApiError) {
        const { metrics } = this.opts;
        // A tier of the table (authentication resolved it), so the label stays bounded.
        const tier = this.tierOf(input);
        if (err.code === 'quota_exceeded') metrics.rateLimited.inc({ tier, limit: 'tokens' });
        else if (err.code === 'concurrency_limit_exceeded')
          metrics.rateLimited.inc({ tier, limit: 'concurrency' });
        else
          metrics.admissionRejected.inc({ model: metrics.modelLabel(input.model), reason: err.code, tier });
      }
      throw err;
    }
  }

  private tierOf(input: ChatRequestInput): string {
    return input.tier !== undefined && isTier(this.opts.tiers, input.tier) ? input.tier : 'free';
  }

  /**
   * Three Redis round trips: the model's queue (depth, pause flag), the user's share (in-flight
   * caps and daily quota, sent together), the enqueue. Refusals cheapest first: a shed request
   * writes nothing.
   */
  private async admit(input: ChatRequestInput): Promise<SubmittedChat> {
    const { hub, dispatcher, models, log } = this.opts;
    let waiting: number;
    let paused: boolean;
    try {
      await models.require(input.model);
      [waiting, paused] = await Promise.all([
        dispatcher.waiting(input.model),
        dispatcher.isPaused(input.model),
      ]);
    } catch (err) {
      if (err instanceof ApiError) throw err;
      throw redisDown(err, log, input.requestId);
    }
    // Paused by an operator (POST /admin/models/:model/pause): drained for maintenance.
    if (paused) {
      throw new ApiError('model_paused', `model '${input.model}' is paused for maintenance; retry later`, {
        param: 'model',
        headers: { 'Retry-After': String(PAUSED_RETRY_AFTER_S) },
      });
    }
    const tier = this.tierOf(input);
    const limits = tierLimits(this.opts.tiers, tier);
    // Lower tiers shed first; QUEUE_MAX_WAITING is the ceiling for all.
    const shedAt = Math.min(
      this.opts.queueMaxWaiting,
      Object.hasOwn(this.opts.shedAt, tier) ? this.opts.shedAt[tier]! : this.opts.queueMaxWaiting,
    );
    if (waiting >= shedAt) {
      const why =
        shedAt < this.opts.queueMaxWaiting
          ? `; tier '${tier}' requests are refused from ${shedAt} waiting`
          : '';
      throw new ApiError(
        'server_overloaded',
        `${waiting} requests are already waiting for model '${input.model}'${why}`,
        {
          details: { queue_depth: waiting },
          headers: { 'Retry-After': String(OVERLOAD_RETRY_AFTER_S) },
        },
      );
    }
    const jobId = randomUUID();
    let reservation: Reservation | undefined;
    let inflight = 0;
    const { userId } = input;
    if (userId !== undefined) {
      [inflight, reservation] = await this.admitUser(userId, jobId, tier, limits, input);
    }
    const enqueuedAt = Date.now();
    // The queue's order: fair share inside the tier (fair-share.ts). vLLM's `priority`
    // (BACKEND_PRIORITY) stays the tier's: jobs reach a backend in the fair order already.
    const queuePriority = fairPriority(limits.priority, inflight);
    const job: ChatJob = {
      v: JOB_VERSION,
      kind: input.kind ?? 'chat',
      replyTo: hub.channel,
      requestId: input.requestId,
      model: input.model,
      messages: input.messages,
      ...(input.prompt !== undefined && { prompt: input.prompt }),
      params: input.params,
      userId: input.userId,
      tier: input.tier,
      enqueuedAt,
      deadline: enqueuedAt + this.opts.queueTimeoutMs,
      quota: reservation,
      priority: limits.priority,
    };
    // Subscribe before enqueue: the hub already listens on this process's channel, and the
    // subscription exists before any worker can see the job.
    const sub = hub.open(jobId);
    if (userId !== undefined) {
      const { fairShare } = this.opts;
      sub.onStarted = () => fairShare.started(userId, jobId);
      // Ended, abandoned or never enqueued: its place is free (before the client reads the end).
      sub.whenClosed.then(() => fairShare.ended(userId, jobId));
    }
    try {
      await dispatcher.enqueue(jobId, job, { priority: queuePriority });
    } catch (err) {
      sub.close();
      if (reservation) this.release(reservation);
      throw redisDown(err, log, input.requestId);
    }
    const meter = new StreamMeter(this.opts.metrics, input.model, input.requestStart, enqueuedAt);
    const chat: SubmittedChat = {
      jobId,
      model: input.model,
      sub,
      enqueuedAt,
      enqueuedAtPerf: performance.now(),
      reservation,
      meter,
    };
    this.opts.watch.watch(chat, queuePriority);
    // Declared lost or past its deadline: cancel it, so no worker starts or re-runs it.
    sub.onGiveUp = (reason) => this.cancelJob(chat, reason);
    this.open.add(chat);
    sub.whenClosed.then(() => this.open.delete(chat));
    // Others were waiting: tell the client where it stands now rather than at the next tick.
    if (waiting > 0) sub.queued(waiting + 1);
    return chat;
  }

  /**
   * The user's in-flight caps and daily quota, both sent at once (one round trip). When one
   * refuses, what the other took is given back; a spent quota is reported first, since retrying
   * cannot help. Returns the user's jobs in flight before this one, and the reservation.
   */
  private async admitUser(
    userId: string,
    jobId: string,
    tier: string,
    limits: TierLimits,
    input: ChatRequestInput,
  ): Promise<[number, Reservation]> {
    const [share, quota] = await Promise.allSettled([
      this.opts.fairShare.admit(userId, jobId, tier, limits),
      this.opts.quota.reserve(userId, limits.tokens_per_day, input, input.params.max_tokens),
    ]);
    if (share.status === 'fulfilled' && quota.status === 'fulfilled') return [share.value, quota.value];
    if (share.status === 'fulfilled') this.opts.fairShare.ended(userId, jobId);
    if (quota.status === 'fulfilled') this.release(quota.value);
    const errors = [quota, share].flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    const refusal = errors.find((e) => e instanceof ApiError);
    if (refusal) throw refusal;
    throw redisDown(errors[0], this.opts.log, input.requestId);
  }

  /** The client disconnected before the end: stop the job wherever it is. */
  abandon(chat: SubmittedChat, reason: string): void {
    const ended = chat.sub.isEnded;
    chat.sub.close();
    if (!ended) this.cancelJob(chat, reason);
  }

  /** Removes the job if it waits, else has its worker abort it. */
  private cancelJob(chat: SubmittedChat, reason: string): void {
    this.opts.dispatcher.cancel(chat.model, chat.jobId, reason).then(
      (how) => {
        this.opts.log.info({ job_id: chat.jobId, how, reason }, 'job_abandoned');
        // Removed before it ran: nothing was generated. (A running job is settled by its worker.)
        if (how === 'removed') this.jobRemoved(chat);
      },
      (err: Error) => this.opts.log.warn({ job_id: chat.jobId, err: err.message }, 'cancel_failed'),
    );
  }

  /** A job removed from the queue before it ran gives its whole reservation back. */
  jobRemoved(chat: SubmittedChat): void {
    if (chat.reservation) this.release(chat.reservation);
  }

  private release(r: Reservation): void {
    this.opts.quota
      .release(r)
      .catch((err: Error) => this.opts.log.warn({ err: err.message }, 'quota_release_failed'));
  }

  /** Waits for the whole answer (non-streaming requests). Throws ApiError for a failed job. */
  async collect(chat: SubmittedChat): Promise<CollectedChat> {
    const transcript = new Transcript();
    for await (const batch of chat.sub) {
      for (const ev of batch) {
        chat.meter.onEvent(ev);
        if (ev.type === 'delta') transcript.add(ev.d);
        else if (ev.type === 'done') return { transcript, done: ev };
        else if (ev.type === 'error') throw apiErrorFromJob(ev.error, ev.message);
      }
    }
    throw new ApiError('internal_error', 'the job ended without a result');
  }
}

function redisDown(err: unknown, log: Logger, requestId: string): ApiError {
  log.warn({ err: (err as Error).message, request_id: requestId }, 'queue_unavailable');
  return new ApiError('service_unavailable', 'the queue is unavailable; retry shortly', {
    headers: { 'Retry-After': '1' },
  });
}
