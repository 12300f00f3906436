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
import type { Tiers } from '../auth/tiers.ts';
import { ApiError, apiErrorFromJob } from '../errors.ts';
import type { ApiMetrics } from '../metrics.ts';
import type { ModelRegistry } from '../models/registry.ts';
import type { Dispatcher } from './dispatcher.ts';
import type { QueueWatch } from './queue-watch.ts';
import type { QuotaBook, Reservation } from './quota.ts';
import type { ReplyHub } from './reply-hub.ts';
import { StreamMeter } from './stream-meter.ts';
import type { JobSubscription } from './subscription.ts';

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

export interface SubmittedChat {
  jobId: string;
  model: string;
  sub: JobSubscription;
  enqueuedAt: number;
  /** performance.now() once enqueued. */
  enqueuedAtPerf: number;
  reservation?: Reservation;
  meter: StreamMeter;
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
  /** Refuse with 503 server_overloaded when this many jobs already wait for the model. */
  queueMaxWaiting: number;
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
        if (err.code === 'quota_exceeded')
          metrics.rateLimited.inc({ tier: input.tier ?? 'free', limit: 'tokens' });
        else metrics.admissionRejected.inc({ model: input.model, reason: err.code });
      }
      throw err;
    }
  }

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
    if (waiting >= this.opts.queueMaxWaiting) {
      throw new ApiError(
        'server_overloaded',
        `${waiting} requests are already waiting for model '${input.model}'`,
        {
          details: { queue_depth: waiting },
          headers: { 'Retry-After': String(OVERLOAD_RETRY_AFTER_S) },
        },
      );
    }
    const limits = (input.tier !== undefined && this.opts.tiers[input.tier]) || this.opts.tiers.free!;
    let reservation: Reservation | undefined;
    if (input.userId !== undefined) {
      try {
        reservation = await this.opts.quota.reserve(
          input.userId,
          limits.tokens_per_day,
          input,
          input.params.max_tokens,
        );
      } catch (err) {
        if (err instanceof ApiError) throw err;
        throw redisDown(err, log, input.requestId);
      }
    }
    const jobId = randomUUID();
    const enqueuedAt = Date.now();
    const priority = limits.priority;
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
    };
    // Subscribe before enqueue: the hub already listens on this process's channel, and the
    // subscription exists before any worker can see the job.
    const sub = hub.open(jobId);
    try {
      await dispatcher.enqueue(jobId, job, { priority });
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
    this.opts.watch.watch(chat, priority);
    this.open.add(chat);
    sub.whenClosed.then(() => this.open.delete(chat));
    // Others were waiting: tell the client where it stands now rather than at the next tick.
    if (waiting > 0) sub.queued(waiting + 1);
    return chat;
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
