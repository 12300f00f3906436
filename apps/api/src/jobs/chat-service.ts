import { randomUUID } from 'node:crypto';
import type { Logger } from '@llmgw/observability';
import type { ChatJob, ChatMessage, DoneEvent, GenerationParams } from '@llmgw/protocol';
import { ApiError, apiErrorFromJob } from '../errors.ts';
import type { ModelRegistry } from '../models/registry.ts';
import type { Dispatcher } from './dispatcher.ts';
import type { ReplyHub } from './reply-hub.ts';
import type { JobSubscription } from './subscription.ts';

export interface ChatRequestInput {
  model: string;
  messages: ChatMessage[];
  params: GenerationParams;
  requestId: string;
  userId?: string;
  tier?: string;
}

export interface SubmittedChat {
  jobId: string;
  model: string;
  sub: JobSubscription;
  enqueuedAt: number;
}

export interface CollectedChat {
  text: string;
  done: DoneEvent;
}

/**
 * What both chat endpoints share: put a job on its model's queue with the reply channel
 * subscribed first, and cancel it when the client leaves.
 */
export class ChatService {
  constructor(
    private readonly hub: ReplyHub,
    private readonly dispatcher: Dispatcher,
    private readonly models: ModelRegistry,
    private readonly log: Logger,
  ) {}

  async submit(input: ChatRequestInput): Promise<SubmittedChat> {
    try {
      await this.models.require(input.model);
    } catch (err) {
      if (err instanceof ApiError) throw err;
      throw redisDown(err, this.log, input.requestId);
    }
    const jobId = randomUUID();
    const enqueuedAt = Date.now();
    const job: ChatJob = {
      v: 1,
      replyTo: this.hub.channel,
      requestId: input.requestId,
      model: input.model,
      messages: input.messages,
      params: input.params,
      userId: input.userId,
      tier: input.tier,
      enqueuedAt,
    };
    // Subscribe before enqueue: the hub already listens on this process's channel, and the
    // subscription exists before any worker can see the job.
    const sub = this.hub.open(jobId);
    try {
      await this.dispatcher.enqueue(jobId, job);
    } catch (err) {
      sub.close();
      throw redisDown(err, this.log, input.requestId);
    }
    return { jobId, model: input.model, sub, enqueuedAt };
  }

  /** The client disconnected before the end: stop the job wherever it is. */
  abandon(chat: SubmittedChat, reason: string): void {
    if (chat.sub.isEnded) {
      chat.sub.close();
      return;
    }
    chat.sub.close();
    this.dispatcher.cancel(chat.model, chat.jobId, reason).then(
      (how) => this.log.info({ job_id: chat.jobId, how, reason }, 'job_abandoned'),
      (err: Error) => this.log.warn({ job_id: chat.jobId, err: err.message }, 'cancel_failed'),
    );
  }

  /** Waits for the whole answer (non-streaming requests). Throws ApiError for a failed job. */
  async collect(chat: SubmittedChat): Promise<CollectedChat> {
    let text = '';
    for await (const batch of chat.sub) {
      for (const ev of batch) {
        if (ev.type === 'token') text += ev.t.join('');
        else if (ev.type === 'done') return { text, done: ev };
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
