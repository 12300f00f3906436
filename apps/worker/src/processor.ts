import type { Logger } from '@llmgw/observability';
import { ChatJob, type ChatResult, type Usage } from '@llmgw/protocol';
import { settleQuota } from '@llmgw/redis';
import { type Job, UnrecoverableError } from 'bullmq';
import type { Redis } from 'ioredis';
import { type Backend, BackendError } from './backends/backend.ts';
import { mapBackendError } from './backends/map-error.ts';
import { JobPublisher } from './publisher.ts';

export interface ProcessorDeps {
  backend: Backend;
  /** Connection used for PUBLISH (never the subscriber). */
  redis: Redis;
  log: Logger;
  instanceId: string;
  heartbeatMs: number;
  /** True for a job cancelled before its processor started. */
  isCancelled(jobId: string): boolean;
  /** Counts running jobs (heartbeat, metrics). */
  slots: { acquire(): void; release(): void };
}

export type ChatProcessor = (
  job: Job,
  token: string | undefined,
  signal?: AbortSignal,
) => Promise<ChatResult>;

/**
 * Runs one chat job: validates it, streams from the backend and publishes events.
 * Any failure ends with an error event on the reply channel and an `UnrecoverableError`:
 * once tokens may have reached a client, re-running the job would duplicate them.
 * (A worker that dies is a different path: BullMQ's stalled-job recovery re-runs the job and the
 * api decides, by the `attempt` on the events, whether the client can still take it.)
 */
export function createProcessor(deps: ProcessorDeps): ChatProcessor {
  // Declared with three parameters: BullMQ creates the AbortSignal only for processors whose
  // `length` is 3 (see ARCHITECTURE.md), which is what makes cancelJob() abort the backend call.
  return async function processChatJob(job: Job, _token: string | undefined, signal?: AbortSignal) {
    const jobId = job.id ?? 'unknown';
    const parsed = ChatJob.safeParse(job.data);
    if (!parsed.success) {
      deps.log.error({ job_id: jobId, issues: parsed.error.issues.slice(0, 3) }, 'invalid_job');
      throw new UnrecoverableError('invalid job payload');
    }
    const data = parsed.data;
    const log = deps.log.child({ request_id: data.requestId, job_id: jobId, model: data.model });
    const attempt = job.attemptsStarted;
    const pub = new JobPublisher(deps.redis, data.replyTo, jobId, attempt, log, deps.heartbeatMs);
    const abort = signal ?? new AbortController().signal;
    const queueWaitMs = Date.now() - data.enqueuedAt;
    log.info({ queue_wait_ms: queueWaitMs, attempt }, 'job_started');
    deps.slots.acquire();
    let usage: Usage | undefined;
    try {
      const result = await run(data, jobId, attempt, abort, pub, log);
      usage = result.usage;
      return result;
    } catch (err) {
      if (err instanceof JobFailed) usage = err.usage;
      throw err;
    } finally {
      deps.slots.release();
      if (data.quota) await settle(data.quota, usage, log);
    }
  };

  /**
   * The reservation made at admission becomes the real usage: prompt (the backend's count, else
   * the estimate) plus what was generated; nothing if the backend never produced anything.
   */
  async function settle(
    quota: NonNullable<ChatJob['quota']>,
    usage: Usage | undefined,
    log: Logger,
  ): Promise<void> {
    const used =
      usage && (usage.promptTokens > 0 || usage.completionTokens > 0)
        ? (usage.promptTokens || quota.promptEstimate) + usage.completionTokens
        : 0;
    try {
      await settleQuota(deps.redis, quota.key, used - quota.reserved);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'quota_settle_failed');
    }
  }

  async function run(
    data: ChatJob,
    jobId: string,
    attempt: number,
    abort: AbortSignal,
    pub: JobPublisher,
    log: Logger,
  ): Promise<ChatResult> {
    if (data.deadline !== undefined && Date.now() > data.deadline) {
      // The api has told its client `queue_timeout` already (or is about to): never start it.
      await pub.end({
        type: 'error',
        error: 'queue_timeout',
        message: 'waited in the queue past its deadline',
      });
      log.info('job_expired');
      throw new UnrecoverableError('queue_timeout');
    }
    if (deps.isCancelled(jobId)) {
      await pub.end({ type: 'error', error: 'cancelled', message: 'cancelled before start' });
      throw new UnrecoverableError('cancelled before start');
    }
    // The `started` publish goes out while the backend request starts (no added latency); if it
    // reaches nobody, the client's api process is gone and the generation is aborted.
    const gone = new AbortController();
    pub.onGone = () => {
      log.info('reply_channel_gone');
      gone.abort('client_gone');
    };
    pub.started(deps.instanceId);
    const signal = AbortSignal.any([abort, gone.signal]);
    try {
      const result = await deps.backend.generate(
        { model: data.model, messages: data.messages, params: data.params },
        { signal, onToken: (t) => pub.token(t) },
      );
      await pub.end({
        type: 'done',
        finishReason: result.finishReason,
        usage: result.usage,
        ttftMs: result.ttftMs,
      });
      log.info(
        {
          finish_reason: result.finishReason,
          prompt_tokens: result.usage.promptTokens,
          completion_tokens: result.usage.completionTokens,
          ttft_ms: result.ttftMs === undefined ? undefined : Math.round(result.ttftMs),
        },
        'job_completed',
      );
      return { finishReason: result.finishReason, usage: result.usage };
    } catch (err) {
      const e = err instanceof BackendError ? err : mapBackendError(err, signal);
      const type = signal.aborted ? abortType(signal.reason) : e.type;
      await pub.end({ type: 'error', error: type, message: e.message, usage: e.partialUsage });
      log.warn({ error_type: type, status: e.status, err: e.message }, 'job_failed');
      throw new JobFailed(`${type}: ${e.message}`, e.partialUsage);
    }
  }
}

function abortType(reason: unknown): 'cancelled' | 'worker_shutdown' {
  return typeof reason === 'string' && reason.startsWith('shutdown') ? 'worker_shutdown' : 'cancelled';
}

/** A job that ended in an error event; carries what was generated, for quota settlement. Never retried. */
class JobFailed extends UnrecoverableError {
  constructor(
    message: string,
    readonly usage: Usage | undefined,
  ) {
    super(message);
  }
}
