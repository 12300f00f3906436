import { type ChatJob, JOB_VERSION } from '@llmgw/protocol';
import type { Admission, Admitted } from '../admission/admission.ts';
import type { GenerationRequest } from '../admission/generation-request.ts';
import type { ReplyHub } from '../reply/reply-hub.ts';
import type { JobCanceller } from './cancel.ts';
import type { Dispatcher } from './dispatcher.ts';
import type { OpenChats } from './open-chats.ts';
import type { QueueWatch } from './queue-watch.ts';
import type { SubmittedChat } from './submitted-chat.ts';

export interface SubmitterOptions {
  hub: Pick<ReplyHub, 'channel' | 'open'>;
  dispatcher: Pick<Dispatcher, 'enqueue'>;
  admission: Pick<Admission, 'hold' | 'notQueued'>;
  watch: Pick<QueueWatch, 'watch'>;
  canceller: Pick<JobCanceller, 'cancel'>;
  open: Pick<OpenChats, 'add'>;
  /** A job not started after this long is removed (the job's `deadline`). */
  queueTimeoutMs: number;
}

/** Puts an admitted request on its model's queue, its reply channel subscribed first. */
export class Submitter {
  constructor(private readonly opts: SubmitterOptions) {}

  /** One Redis round trip, the enqueue. Throws 503 `service_unavailable` if it fails. */
  async submit(req: GenerationRequest, admitted: Admitted): Promise<SubmittedChat> {
    const { hub, dispatcher, admission } = this.opts;
    const { jobId } = admitted;
    const enqueuedAt = Date.now();
    const job: ChatJob = {
      v: JOB_VERSION,
      kind: req.kind ?? 'chat',
      replyTo: hub.channel,
      requestId: req.requestId,
      model: req.model,
      messages: req.messages,
      ...(req.prompt !== undefined && { prompt: req.prompt }),
      params: req.params,
      userId: req.userId,
      tier: req.tier,
      enqueuedAt,
      deadline: enqueuedAt + this.opts.queueTimeoutMs,
      quota: admitted.reservation,
      priority: admitted.priority,
    };
    // Subscribe before enqueue: the hub already listens on this process's channel, and the
    // subscription exists before any worker can see the job.
    const sub = hub.open(jobId);
    admission.hold(req, admitted, sub);
    try {
      await dispatcher.enqueue(jobId, job, { priority: admitted.queuePriority });
    } catch (err) {
      sub.close();
      throw admission.notQueued(req, admitted, err);
    }
    const chat: SubmittedChat = {
      jobId,
      model: req.model,
      sub,
      enqueuedAt,
      enqueuedAtPerf: performance.now(),
      reservation: admitted.reservation,
    };
    this.opts.watch.watch(chat, admitted.queuePriority);
    // Declared lost or past its deadline: cancel it, so no worker starts or re-runs it.
    sub.onGiveUp = (reason) => this.opts.canceller.cancel(chat, reason);
    this.opts.open.add(chat);
    // Others were waiting: tell the client where it stands now rather than at the next tick.
    if (admitted.waiting > 0) sub.queued(admitted.waiting + 1);
    return chat;
  }
}
