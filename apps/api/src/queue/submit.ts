import { type ChatJob, JOB_VERSION } from '@llmgw/protocol';
import { NO_USAGE } from '@llmgw/redis';
import type { Admission, Admitted } from '../admission/admission.ts';
import type { GenerationRequest } from '../admission/generation-request.ts';
import { tokenHeaders } from '../admission/quota.ts';
import type { EventLog } from '../durable/event-log.ts';
import type { JobRecords } from '../durable/job-record.ts';
import type { ReplyHub } from '../reply/reply-hub.ts';
import type { Rendition } from '../wire/rendition.ts';
import type { JobCanceller } from './cancel.ts';
import type { Dispatcher } from './dispatcher.ts';
import type { OpenChats } from './open-chats.ts';
import type { QueueWatch } from './queue-watch.ts';
import type { SubmittedChat } from './submitted-chat.ts';

export interface SubmitterOptions {
  hub: Pick<ReplyHub, 'channelOf' | 'open'>;
  dispatcher: Pick<Dispatcher, 'enqueue' | 'cancel'>;
  admission: Pick<Admission, 'notQueued'>;
  watch: Pick<QueueWatch, 'watch'>;
  canceller: Pick<JobCanceller, 'cancel'>;
  open: Pick<OpenChats, 'add'>;
  records: Pick<JobRecords, 'create' | 'remove'>;
  log: Pick<EventLog, 'jobSettings' | 'end'>;
  /** A job not started after this long is removed (the job's `deadline`). */
  queueTimeoutMs: number;
  /** RESUME_GRACE_MS: how long a job keeps generating for nobody (its client may come back). */
  graceMs: number;
}

/** The cancel reason of a job whose enqueue failed (its client got a 503, its quota came back). */
export const NOT_QUEUED = 'not_queued';

/** Puts an admitted request on its model's queue, its job's channel subscribed first. */
export class Submitter {
  constructor(private readonly opts: SubmitterOptions) {}

  /**
   * Two round trips: the job's channel subscribed and its record written (together), then the
   * enqueue. Throws 503 `service_unavailable` if Redis fails.
   */
  async submit(req: GenerationRequest, admitted: Admitted): Promise<SubmittedChat> {
    const { hub, dispatcher, admission } = this.opts;
    const { jobId } = admitted;
    const enqueuedAt = Date.now();
    const rendition: Rendition = {
      f: req.answer.f,
      model: req.model,
      created: Math.floor(enqueuedAt / 1000),
      rid: req.requestId,
      ...(req.answer.usage && { usage: true }),
    };
    const async = req.answer.async === true;
    const job: ChatJob = {
      v: JOB_VERSION,
      kind: req.kind ?? 'chat',
      replyTo: hub.channelOf(jobId),
      log: this.opts.log.jobSettings,
      // An asynchronous job runs whether anyone follows it or not.
      graceMs: async ? -1 : this.opts.graceMs,
      requestId: req.requestId,
      model: req.model,
      messages: req.messages,
      ...(req.prompt !== undefined && { prompt: req.prompt }),
      params: req.params,
      userId: req.userId,
      tier: req.tier,
      ...(req.keyId !== undefined && { keyId: req.keyId }),
      enqueuedAt,
      deadline: enqueuedAt + this.opts.queueTimeoutMs,
      quota: admitted.reservation && {
        key: admitted.reservation.key,
        reserved: admitted.reservation.reserved,
        promptEstimate: admitted.reservation.promptEstimate,
      },
      ...(admitted.reservation?.holds && { holds: admitted.reservation.holds }),
      priority: admitted.priority,
    };
    // Subscribed before enqueue: the subscription exists before any worker can see the job.
    const subscribing = hub.open(jobId);
    const recording = this.opts.records.create({
      id: jobId,
      userId: req.userId ?? '',
      ...(req.keyId !== undefined && { keyId: req.keyId }),
      model: req.model,
      createdAt: enqueuedAt,
      rendition,
      async,
      stream: req.answer.stream,
    });
    let sub: SubmittedChat['sub'];
    try {
      [sub] = await Promise.all([subscribing, recording]);
      await dispatcher.enqueue(jobId, job, { priority: admitted.queuePriority });
    } catch (err) {
      subscribing.then(
        (s) => s.close(),
        () => {},
      );
      this.forget(jobId, req.model, req.userId ?? '', recording);
      throw admission.notQueued(req, admitted, err);
    }
    const chat: SubmittedChat = {
      jobId,
      model: req.model,
      ...(req.userId !== undefined && { userId: req.userId }),
      ...(req.keyId !== undefined && { keyId: req.keyId }),
      sub,
      enqueuedAt,
      enqueuedAtPerf: performance.now(),
      reservation: admitted.reservation,
      ...(admitted.tokensPerMinute && {
        limitHeaders: tokenHeaders(admitted.tokensPerMinute.limit, admitted.tokensPerMinute.decision),
      }),
      rendition,
      async,
      ...(req.answer.resumable && { resumable: true }),
      position: admitted.waiting + 1,
    };
    this.opts.watch.watch(chat, admitted.queuePriority);
    // Declared lost or past its deadline: cancel it, so no worker starts or re-runs it, and say
    // so in its log, so that whoever follows it (now or later) sees the same end. One that had
    // not started (past its deadline in the queue) used nothing; a lost one's usage is unknown.
    sub.onGiveUp = (error, message) => {
      this.opts.canceller.cancel(chat, error);
      this.opts.log.end(jobId, error, message, sub.started ? undefined : NO_USAGE).catch(() => {});
    };
    // An asynchronous job is nobody's open request: shutdown neither waits for it nor ends it.
    if (!async) this.opts.open.add(chat);
    // Others were waiting: tell the client where it stands now rather than at the next tick.
    if (admitted.waiting > 0) sub.queued(admitted.waiting + 1);
    return chat;
  }

  /**
   * The job never reached the queue: no record of it stays (GET /v1/jobs would list a phantom
   * `queued` job for its whole TTL), and a retry that attached to it meanwhile (same
   * Idempotency-Key) gets the end. Best effort: with Redis down, the record expires on its own.
   */
  private forget(jobId: string, model: string, userId: string, recording: Promise<void>): void {
    // A failed enqueue may still land (a timed-out command that a failover sends again later):
    // the job is marked cancelled, so that no worker runs it for a client that got its 503.
    // Its quota came back with the 503 (admission.notQueued); the worker gives nothing back again.
    this.opts.dispatcher.cancel(model, jobId, NOT_QUEUED).catch(() => {});
    recording
      .then(async () => {
        await this.opts.log.end(
          jobId,
          'internal_error',
          'this job could not be queued; send the request again',
        );
        await this.opts.records.remove(jobId, userId);
      })
      .catch(() => {});
  }
}
