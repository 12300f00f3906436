import type { Logger } from '@llmgw/observability';
import {
  type BatchResult,
  ChatJob,
  type ChatResult,
  type Delta,
  ErrorType,
  JOB_VERSION,
  pushDelta,
  type Usage,
} from '@llmgw/protocol';
import {
  claimAttempt,
  claimBatchRequest,
  type Keys,
  type RunningPlaces,
  recordBatchResult,
  recordUsageEventually,
  releaseBatchRequest,
  untilRedisTakes,
  usageOutcome,
} from '@llmgw/redis';
import { DelayedError, type Job, UnrecoverableError } from 'bullmq';
import type { Redis } from 'ioredis';
import { type Backend, BackendError } from './backends/backend.ts';
import { mapBackendError } from './backends/map-error.ts';
import { billedUsage } from './billed-usage.ts';
import { attemptsLeft, BACKEND_FAILURES, handBack, Requeued, requeue } from './failover.ts';
import { GenerationSpan } from './generation-span.ts';
import { isSummary, type JobSummary, keepSummaryOnly, summarize } from './job-summary.ts';
import type { JobOutcome, WorkerMetrics } from './metrics.ts';
import { JobPublisher } from './publisher.ts';
import { settleEventually, settleQuotaEventually } from './quota-settler.ts';

export interface ProcessorDeps {
  backend: Backend;
  /** Commands (quota settlement). */
  redis: Redis;
  /** PUBLISH only (auto-pipelined). */
  publisher: Redis;
  log: Logger;
  instanceId: string;
  heartbeatMs: number;
  keys: Keys;
  /** True for a job cancelled before its processor started (control channel, this process). */
  isCancelled(jobId: string): boolean;
  /** The model's circuit breaker on this worker: told of every outcome, asked before a requeue. */
  breaker(model: string): {
    readonly isClosed: boolean;
    success(): void;
    failure(reason: string): void;
  };
  /** Whether another live worker with a closed breaker serves `model` (failover prefers it). */
  otherWorkerServes(model: string): Promise<boolean>;
  /** No first token within this long: the backend is treated as failed (`backend_timeout`). */
  firstTokenTimeoutMs: number;
  /** BACKEND_PRIORITY: pass the job's priority as vLLM's `priority` request field. */
  backendPriority: boolean;
  metrics: WorkerMetrics;
  /** LOG_PROMPTS=1: include the messages in job_started (off by default: prompts are user data). */
  logPrompts: boolean;
  /** The user's place of each job it runs, held from its start to its end (not its client's). */
  places: Pick<RunningPlaces, 'start' | 'end'>;
  /**
   * Sentinel or Cluster: each attempt is claimed (claimAttempt) before its backend call, so that a
   * job BullMQ hands out again after a failover lost its move to active does not run twice.
   */
  replicated?: boolean;
  /** USAGE_RETENTION_DAYS: how long the usage ledger keeps a day. */
  usageRetentionDays: number;
  /**
   * Jobs waiting in a model's interactive queue: a batch request starts only when there are none
   * (batch-lane.ts); absent, batch requests are not held back.
   */
  interactiveWaiting?(model: string): Promise<number>;
}

/** A batch request put back because an interactive job waits: tried again after this long, ms. */
const BATCH_HOLD_MS = 250;

export type ChatProcessor = (
  job: Job,
  token: string | undefined,
  signal?: AbortSignal,
) => Promise<ChatResult>;

/**
 * Runs one chat job: validates it, streams from the backend and publishes events.
 * A backend failure before anything was published goes back to the queue for another worker
 * (a `requeued` event; see failover.ts). Any other failure ends with an error event on the reply
 * channel and an `UnrecoverableError`: once tokens may have reached a client, re-running the job
 * would duplicate them.
 * (A worker that dies is a different path: BullMQ's stalled-job recovery re-runs the job and the
 * api decides, by the `attempt` on the events, whether the client can still take it.)
 */
export function createProcessor(deps: ProcessorDeps): ChatProcessor {
  // Declared with three parameters: BullMQ creates the AbortSignal only for processors whose
  // `length` is 3 (see ARCHITECTURE.md), which is what makes cancelJob() abort the backend call.
  return async function processChatJob(job: Job, token: string | undefined, signal?: AbortSignal) {
    const jobId = job.id ?? 'unknown';
    // It ended already (its data is the summary): handed out again by a stalled-job check that
    // raced its end. Nothing to run, nobody to tell.
    if (isSummary(job.data)) {
      deps.log.warn({ job_id: jobId, ended: job.data.ended }, 'job_already_ended');
      throw new UnrecoverableError('job already ended');
    }
    const parsed = ChatJob.safeParse(job.data);
    if (!parsed.success) {
      const version = (job.data as { v?: unknown } | null)?.v;
      deps.log.error(
        { job_id: jobId, job_version: version, issues: parsed.error.issues.slice(0, 3) },
        'invalid_job',
      );
      // Refused, never half-run: still tell the client, when the job says where it waits.
      const replyTo = (job.data as { replyTo?: unknown } | null)?.replyTo;
      if (typeof replyTo === 'string' && replyTo !== '') {
        const message =
          version === JOB_VERSION
            ? 'the job payload is invalid'
            : `this worker reads job version ${JOB_VERSION}, not ${String(version)}; upgrade the older side`;
        await new JobPublisher(
          deps.publisher,
          replyTo,
          jobId,
          job.attemptsStarted,
          deps.log,
          deps.heartbeatMs,
        ).end({
          type: 'error',
          error: 'invalid_job',
          message,
        });
      }
      await keepSummary(job, summarize(job.data, 'invalid', { error: 'invalid_job' }), deps.log);
      throw new UnrecoverableError('invalid job payload');
    }
    const data = parsed.data;
    const log = deps.log.child({ request_id: data.requestId, job_id: jobId, model: data.model });
    // The api gave up on this job (its client left, its stream was declared lost): never run it,
    // not even as a stalled job's re-run on another worker.
    const cancelled = deps.isCancelled(jobId)
      ? 'cancelled'
      : await deps.redis.get(deps.keys.cancelled(jobId));
    if (cancelled !== null) {
      log.info({ reason: cancelled }, 'job_cancelled_before_start');
      // Nothing was generated: the whole reservation goes back, and the user's place. A job whose
      // enqueue failed for its api (`not_queued`) had its reservation back with the 503, and is
      // nobody's job: its client got the 503, not a job.
      if (cancelled !== 'not_queued') {
        settle(data, undefined, log);
        // Its end goes into its log, so its status says what the ledger counts (cancelled, no
        // tokens), and a follower (a resumable request) hears it.
        const error = ErrorType.safeParse(cancelled).data ?? 'cancelled';
        await publisherOf(job, data, job.attemptsStarted, log).end({
          type: 'error',
          error,
          message: 'cancelled before it started',
          usage: billedUsage(undefined),
        });
        count(jobId, data, undefined, error, log);
      }
      if (data.userId !== undefined && !data.batch) await deps.places.end(data.userId, jobId);
      await keepSummary(job, summarize(job.data, 'cancelled', { error: 'cancelled' }), log);
      throw new UnrecoverableError('cancelled before start');
    }
    if (data.batch) {
      // Idle slots only: an interactive job that arrived since the lane last looked goes first.
      if (deps.interactiveWaiting && (await deps.interactiveWaiting(data.model)) > 0) {
        await job.moveToDelayed(Date.now() + BATCH_HOLD_MS, token);
        throw new DelayedError();
      }
      // Its batch was cancelled (or is gone): a request that has not started never will.
      const status = await deps.redis.hget(deps.keys.batch(data.batch.id), 'status');
      if (status !== 'in_progress') {
        log.info({ batch_id: data.batch.id, status }, 'batch_request_skipped');
        await recordBatch(
          data,
          { ok: false, error: 'cancelled', message: `the batch is ${status ?? 'gone'}` },
          'cancelled',
          log,
        );
        throw new UnrecoverableError('batch not in progress');
      }
    }
    if (data.failedOn?.includes(deps.instanceId) && (await deps.otherWorkerServes(data.model))) {
      log.info('job_handed_back');
      await handBack(job, token);
    }
    const attempt = job.attemptsStarted;
    if (
      deps.replicated &&
      !(await claimAttempt(deps.redis, deps.keys.jobAttempt(jobId, attempt), deps.instanceId))
    ) {
      // The run that claimed it goes on elsewhere, and settles the quota and the place.
      log.warn({ attempt }, 'job_attempt_already_ran');
      throw new UnrecoverableError('this attempt already ran: a Redis failover handed the job out again');
    }
    const pub = publisherOf(job, data, attempt, log);
    const abort = signal ?? new AbortController().signal;
    const queueWaitMs = Date.now() - data.enqueuedAt;
    log.info(
      { queue_wait_ms: queueWaitMs, attempt, ...(deps.logPrompts && { messages: data.messages }) },
      'job_started',
    );
    deps.metrics.jobStarted(data.model);
    // Sent with the backend request, not awaited before it: no added latency.
    // A batch request takes no place of its user's: its interactive requests' caps (max_concurrent,
    // fair share) never count the batch's idle-slot work.
    if (data.userId !== undefined && !data.batch) void deps.places.start(data.userId, jobId);
    let usage: Usage | undefined;
    let failure: ErrorType | 'requeued' | undefined;
    // A batch request keeps its answer, for the batch's output file.
    const collected: Delta[] | undefined = data.batch ? [] : undefined;
    let finishReason = 'stop';
    let failMessage = '';
    try {
      const result = await run(job, token, data, attempt, abort, pub, log, collected);
      usage = result.usage;
      finishReason = result.finishReason;
      return result;
    } catch (err) {
      if (err instanceof Requeued || err instanceof DelayedError) failure = 'requeued';
      else failure = err instanceof JobFailed ? err.type : 'internal_error';
      if (err instanceof JobFailed) usage = err.usage;
      failMessage = (err as Error).message;
      throw err;
    } finally {
      deps.metrics.jobEnded(data.model, outcomeOf(failure), failure === 'requeued' ? undefined : failure);
      // A requeued job is settled, and its place freed, by the attempt that ends it; it keeps
      // its payload for that attempt. Any other end is final: BullMQ keeps the summary only.
      if (failure !== 'requeued') {
        settle(data, usage, log);
        count(jobId, data, usage, failure, log);
        if (data.batch) {
          const billed = billedUsage(usage, data.quota?.promptEstimate);
          void recordBatch(
            data,
            failure === undefined
              ? { ok: true, deltas: collected ?? [], finishReason, usage: billed }
              : { ok: false, error: failure, message: failMessage, usage: billed },
            failure === undefined ? 'completed' : 'failed',
            log,
          );
        }
        if (data.userId !== undefined && !data.batch) void deps.places.end(data.userId, jobId);
        const ended = outcomeOf(failure) as JobSummary['ended'];
        await keepSummary(job, summarize(job.data, ended, { error: failure, usage }), log);
      }
    }
  };

  /** The job's events: on its channel, and into its log when the api keeps one. */
  function publisherOf(job: Job, data: ChatJob, attempt: number, log: Logger): JobPublisher {
    const jobId = job.id ?? 'unknown';
    return new JobPublisher(deps.publisher, data.replyTo, jobId, attempt, log, deps.heartbeatMs, {
      graceMs: data.graceMs,
      ...(data.log && {
        log: { eventsKey: deps.keys.jobEvents(jobId), metaKey: deps.keys.job(jobId), ...data.log },
      }),
    });
  }

  /**
   * The job's final end, counted in its user's usage ledger (usage.ts in @llmgw/redis) with the
   * numbers its quota is settled to. Only a final end: a requeued attempt is not one, and a second
   * end of the same job (a stalled re-run, a retry of this call) finds it counted. Not awaited:
   * retried in the background until Redis takes it, like the settlement.
   */
  function count(
    jobId: string,
    data: ChatJob,
    usage: Usage | undefined,
    error: ErrorType | undefined,
    log: Logger,
  ): void {
    if (data.userId === undefined) return;
    void recordUsageEventually(
      deps.redis,
      deps.keys,
      {
        jobId,
        userId: data.userId,
        ...(data.keyId !== undefined && { keyId: data.keyId }),
        model: data.model,
        // A batch's requests are their own line of the ledger: idle-slot work, told apart.
        outcome: data.batch ? 'batch' : usageOutcome(error),
        usage: billedUsage(usage, data.quota?.promptEstimate),
        endedAt: Date.now(),
      },
      { retentionDays: deps.usageRetentionDays, log, onRetry: () => deps.metrics.usageRecordRetries.inc() },
    );
  }

  /**
   * A batch request's end, into its batch's results (once: batch-result-2.lua), retried until
   * Redis takes it: the batch is finished only when every request's end is there.
   */
  async function recordBatch(
    data: ChatJob,
    result: BatchResult,
    outcome: 'completed' | 'failed' | 'cancelled',
    log: Logger,
  ): Promise<void> {
    const batch = data.batch!;
    const r = await untilRedisTakes(
      () => recordBatchResult(deps.redis, deps.keys, batch.id, batch.index, result, outcome),
      {
        redis: deps.redis,
        onRetry: (_, err) =>
          log.warn({ batch_id: batch.id, index: batch.index, err: err.message }, 'batch_result_retrying'),
      },
    );
    if (r.end === 'done') deps.metrics.batchRequests.inc({ model: data.model, outcome });
  }

  /** The job's payload goes; what Bull Board should still show stays (job-summary.ts). */
  async function keepSummary(job: Job, summary: JobSummary, log: Logger): Promise<void> {
    if (!(await keepSummaryOnly(job, summary))) log.warn({ job_id: job.id }, 'job_summary_failed');
  }

  /**
   * The reservations made at admission (the daily quota, and the holds: tokens per minute, a
   * key's monthly budget) become the real usage: prompt (the backend's count, else the estimate)
   * plus what was generated; nothing if the backend never produced anything. Not awaited: each
   * is retried in the background until Redis takes it (quota-settler.ts).
   */
  function settle(data: ChatJob, usage: Usage | undefined, log: Logger): void {
    const billed = billedUsage(usage, data.quota?.promptEstimate);
    const used = billed.promptTokens + billed.completionTokens;
    const opts = { redis: deps.redis, log, metrics: deps.metrics };
    if (data.quota) void settleQuotaEventually(data.quota.key, used - data.quota.reserved, opts);
    for (const hold of data.holds ?? []) void settleEventually(hold, used - hold.reserved, opts);
  }

  async function run(
    job: Job,
    token: string | undefined,
    data: ChatJob,
    attempt: number,
    abort: AbortSignal,
    pub: JobPublisher,
    log: Logger,
    collected?: Delta[],
  ): Promise<ChatResult> {
    if (data.deadline !== undefined && Date.now() > data.deadline) {
      // The api has told its client already (or is about to): never start it. A job that was
      // tried before and comes back past its deadline found no working backend in time.
      const tried = (data.failedOn?.length ?? 0) > 0;
      const error = tried ? 'backend_unavailable' : 'queue_timeout';
      const message = tried
        ? 'no backend answered before the request deadline'
        : 'waited in the queue past its deadline';
      await pub.end({ type: 'error', error, message, usage: billedUsage(undefined) });
      log.info({ error_type: error }, 'job_expired');
      throw new JobFailed(error, error, undefined);
    }
    // The `started` publish goes out while the backend request starts (no added latency); if
    // nobody follows the job for its grace (RESUME_GRACE_MS), the generation is aborted.
    const gone = new AbortController();
    pub.onGone = () => {
      log.info('reply_channel_gone');
      gone.abort('client_gone');
    };
    // Redis refused the job's events for too long: its log has a hole, its answer can never be
    // whole, so the generation stops and the job ends failed (publisher.ts, BACKLOG).
    pub.onLost = () => gone.abort('events_lost');
    // Its api cancelled it and the control message never came: the marker says so.
    pub.onUnfollowed = () => {
      deps.redis.exists(deps.keys.cancelled(job.id ?? '')).then(
        (marked) => {
          if (marked !== 1 || gone.signal.aborted) return;
          log.info('job_cancel_marked');
          gone.abort('cancelled');
        },
        () => {},
      );
    };
    pub.started(deps.instanceId);
    // No first token in time is a backend failure like any other (retried before the first token).
    const firstToken = new AbortController();
    const firstTokenTimer = setTimeout(
      () => firstToken.abort('first_token_timeout'),
      deps.firstTokenTimeoutMs,
    );
    firstTokenTimer.unref();
    let published = false;
    const signal = AbortSignal.any([abort, gone.signal, firstToken.signal]);
    const breaker = deps.breaker(data.model);
    const genStart = performance.now();
    const params =
      deps.backendPriority && data.priority !== undefined
        ? { ...data.params, priority: data.priority }
        : data.params;
    // A batch request reaches a backend once: one whose worker died mid-generation (BullMQ hands
    // it out again) is not run twice, it fails as worker_lost.
    if (data.batch && !(await claimBatchRequest(deps.redis, deps.keys, data.batch.id, data.batch.index))) {
      clearTimeout(firstTokenTimer);
      const message = 'this batch request reached a backend before its worker was lost; it is not run twice';
      await pub.end({ type: 'error', error: 'worker_lost', message, usage: billedUsage(undefined) });
      log.warn({ batch_id: data.batch.id, index: data.batch.index }, 'batch_request_not_rerun');
      throw new JobFailed('worker_lost', `worker_lost: ${message}`, undefined);
    }
    const span = new GenerationSpan(data, job.id ?? 'unknown', attempt, deps.backend);
    try {
      const dropped = new Set<string>();
      const result = await deps.backend.generate(
        { kind: data.kind, model: data.model, messages: data.messages, prompt: data.prompt, params },
        {
          signal,
          onDelta: (d) => {
            if (!published) {
              published = true;
              clearTimeout(firstTokenTimer);
              span.onDelta();
            }
            if (collected) pushDelta(collected, { ...d } as Delta);
            pub.delta(d);
          },
          onDropped: (what) => {
            deps.metrics.droppedFromBackend(data.model, what);
            dropped.add(what);
          },
        },
      );
      clearTimeout(firstTokenTimer);
      // What the client is told it used is what it is charged (billed-usage.ts).
      const usage = billedUsage(result.usage, data.quota?.promptEstimate);
      span.done(result);
      breaker.success();
      // One line per job, not per chunk: what the backend sent that no client will see.
      if (dropped.size > 0) log.warn({ fields: [...dropped] }, 'backend_fields_dropped');
      await pub.end({
        type: 'done',
        finishReason: result.finishReason,
        ...(result.stopSequence !== undefined && { stopSequence: result.stopSequence }),
        usage,
        ttftMs: result.ttftMs,
        genMs: performance.now() - genStart,
      });
      // The answer's events did not all reach the log: its end was written as an error instead.
      if (pub.lost) {
        log.warn({ error_type: 'internal_error', err: pub.lost }, 'job_failed');
        throw new JobFailed('internal_error', `internal_error: ${pub.lost}`, usage);
      }
      deps.metrics.backendDuration.observe({ model: data.model }, (performance.now() - genStart) / 1000);
      if (result.ttftMs !== undefined)
        deps.metrics.backendTtft.observe({ model: data.model }, result.ttftMs / 1000);
      log.info(
        {
          finish_reason: result.finishReason,
          prompt_tokens: usage.promptTokens,
          completion_tokens: usage.completionTokens,
          ttft_ms: result.ttftMs === undefined ? undefined : Math.round(result.ttftMs),
        },
        'job_completed',
      );
      return { finishReason: result.finishReason, usage };
    } catch (err) {
      clearTimeout(firstTokenTimer);
      if (err instanceof JobFailed) throw err;
      const timedOut = firstToken.signal.aborted && !abort.aborted && !gone.signal.aborted;
      const e = timedOut
        ? new BackendError('backend_timeout', `no first token within ${deps.firstTokenTimeoutMs} ms`)
        : err instanceof BackendError
          ? err
          : mapBackendError(err, signal);
      const type = timedOut ? 'backend_timeout' : signal.aborted ? abortType(signal.reason) : e.type;
      const message = pub.lost ?? e.message;
      span.failed(type, message, e.partialUsage);
      if (BACKEND_FAILURES.has(type)) {
        breaker.failure(`${type}: ${e.message}`);
        // Nothing reached the client yet: the job may go to another worker instead of failing.
        const pastDeadline = data.deadline !== undefined && Date.now() > data.deadline;
        if (!published && !pastDeadline && !pub.lost && (attemptsLeft(job) > 0 || !breaker.isClosed)) {
          deps.metrics.retries.inc({ model: data.model, error_type: type });
          log.warn({ error_type: type, status: e.status, err: e.message, attempt }, 'job_requeued');
          await pub.end({ type: 'requeued', error: type, message: e.message });
          // Nothing ran at the backend: the next attempt may claim the batch request again.
          if (data.batch) await releaseBatchRequest(deps.redis, deps.keys, data.batch.id, data.batch.index);
          await requeue(job, token, deps.instanceId, !breaker.isClosed);
        }
      }
      const usage = billedUsage(e.partialUsage, data.quota?.promptEstimate);
      await pub.end({ type: 'error', error: type, message, usage });
      log.warn({ error_type: type, status: e.status, err: message }, 'job_failed');
      throw new JobFailed(type, `${type}: ${message}`, usage);
    }
  }
}

function abortType(reason: unknown): 'cancelled' | 'worker_shutdown' | 'internal_error' {
  if (reason === 'events_lost') return 'internal_error';
  return typeof reason === 'string' && reason.startsWith('shutdown') ? 'worker_shutdown' : 'cancelled';
}

/** A job that ended in an error event; carries what was generated, for quota settlement. Never retried. */
class JobFailed extends UnrecoverableError {
  constructor(
    readonly type: ErrorType,
    message: string,
    readonly usage: Usage | undefined,
  ) {
    // BullMQ keeps it as the failed job's failedReason, for each of up to KEEP_FAILED jobs: a
    // backend's error message is cut at 1,000 characters there (the client got it whole).
    super(message.length > 1000 ? `${message.slice(0, 1000)}…` : message);
    // An outcome, not a bug: BullMQ keeps this as the job's stacktrace too; the frames would say
    // nothing that failedReason does not.
    this.stack = `${this.name}: ${this.message}`;
  }
}

function outcomeOf(failure: ErrorType | 'requeued' | undefined): JobOutcome {
  if (failure === undefined) return 'completed';
  if (failure === 'requeued') return 'requeued';
  if (failure === 'queue_timeout') return 'expired';
  if (failure === 'cancelled' || failure === 'worker_shutdown') return 'cancelled';
  return 'failed';
}
