import { type DoneEvent, type ErrorEvent, type JobEvent, Transcript } from '@llmgw/protocol';
import { NO_USAGE } from '@llmgw/redis';
import type { z } from 'zod';
import type { Admission } from '../admission/admission.ts';
import { ApiError } from '../errors/index.ts';
import type { Dispatcher } from '../queue/dispatcher.ts';
import type { OpenChats } from '../queue/open-chats.ts';
import type { SubmittedChat } from '../queue/submitted-chat.ts';
import type { UsageLedger } from '../usage/ledger.ts';
import { openAIUsage } from '../wire/frames.ts';
import { bodyOf } from '../wire/rendition.ts';
import type { EventLog } from './event-log.ts';
import { type FollowDeps, follow } from './follow.ts';
import type { JobCancelled, JobStatusBody, JobSummary } from './job-bodies.ts';
import type { JobRecord, JobRecords } from './job-record.ts';

export type JobStatus = 'queued' | 'in_progress' | 'completed' | 'failed' | 'cancelled';

/** Whose job it must be: a user's id, or {@link ANY_OWNER} (the admin token). */
export type Owner = string | typeof ANY_OWNER;
export const ANY_OWNER = null;

export interface JobsOptions extends FollowDeps {
  records: Pick<JobRecords, 'get' | 'recent'>;
  log: Pick<EventLog, 'read' | 'end'>;
  dispatcher: Pick<Dispatcher, 'positions' | 'cancel' | 'reservationOf'>;
  admission: Pick<Admission, 'neverRan'>;
  /** A job cancelled before it ran is counted here (a worker counts the others). */
  usage: Pick<UsageLedger, 'neverRan'>;
  /** Followers are open requests too: shutdown waits for them, then ends them. */
  open: Pick<OpenChats, 'add'>;
}

/**
 * The jobs a user submitted, as the `/v1/jobs` routes see them: follow one (resume), its status
 * and result, the user's recent ones, cancel. Only its user sees a job: for anyone else it does
 * not exist (404, never a 403 that would confirm it does).
 */
export class Jobs {
  constructor(private readonly opts: JobsOptions) {}

  /** The owner's job (any job for the admin), or 404. */
  async record(jobId: string, owner: Owner): Promise<JobRecord> {
    const rec = await this.opts.records.get(jobId);
    if (!rec || (owner !== ANY_OWNER && rec.userId !== owner)) {
      throw new ApiError('not_found', `no job '${jobId.slice(0, 64)}'`);
    }
    return rec;
  }

  async follow(jobId: string, owner: Owner): Promise<SubmittedChat> {
    const chat = await follow(this.opts, await this.record(jobId, owner));
    this.opts.open.add(chat);
    return chat;
  }

  /** `GET /v1/jobs/{id}`: where it stands, and once completed the same body as a non-streaming answer. */
  async status(jobId: string, owner: Owner): Promise<z.input<typeof JobStatusBody>> {
    const rec = await this.record(jobId, owner);
    const { events, complete } = await this.opts.log.read(jobId);
    const fold = foldEvents(events, { trimmed: !complete });
    const body: z.input<typeof JobStatusBody> = {
      id: jobId,
      object: 'job',
      status: fold.status,
      model: rec.model,
      created_at: Math.floor(rec.createdAt / 1000),
      async: rec.async,
      ...(owner === ANY_OWNER && { user_id: rec.userId }),
    };
    if (fold.status === 'queued') {
      const [position] = await this.opts.dispatcher.positions([{ model: rec.model, jobId }]);
      body.position = position ?? null;
    }
    if (fold.done) {
      // A log trimmed at JOB_LOG_MAX_EVENTS still tells how the job ended, not what it said.
      body.result = complete ? bodyOf(rec.rendition, jobId, fold.transcript, fold.done) : null;
      body.usage = openAIUsage(fold.done.usage);
      body.timings = { backend_ttft_ms: round(fold.done.ttftMs), backend_ms: round(fold.done.genMs) };
    }
    if (fold.error) {
      body.error = { type: fold.error.error, message: fold.error.message };
      if (fold.error.usage) body.usage = openAIUsage(fold.error.usage);
    }
    return body;
  }

  /** `GET /v1/jobs`: the user's recent jobs, newest first. */
  async list(userId: string, limit: number): Promise<z.input<typeof JobSummary>[]> {
    const ids = await this.opts.records.recent(userId, limit);
    const rows = await Promise.all(
      ids.map(async (id) => {
        const [rec, events] = await Promise.all([this.opts.records.get(id), this.opts.log.read(id)]);
        if (!rec) return undefined;
        return {
          id,
          object: 'job' as const,
          status: foldEvents(events.events, { trimmed: !events.complete }).status,
          model: rec.model,
          created_at: Math.floor(rec.createdAt / 1000),
          async: rec.async,
        };
      }),
    );
    return rows.filter((r) => r !== undefined);
  }

  /**
   * `POST /v1/jobs/{id}/cancel`: removed if it waits (its quota back), aborted by its worker if
   * it runs; the end goes into its log, so every follower sees it. A finished job stays as it is.
   */
  async cancel(jobId: string, owner: Owner): Promise<z.input<typeof JobCancelled>> {
    const rec = await this.record(jobId, owner);
    const logged = await this.opts.log.read(jobId);
    const fold = foldEvents(logged.events, { trimmed: !logged.complete });
    // A log with a hole reads `failed` while its job may still run: that one is still stopped.
    const before = fold.status;
    if (!fold.unended && (before === 'completed' || before === 'failed' || before === 'cancelled')) {
      return { id: jobId, object: 'job', status: before };
    }
    const reservation = await this.opts.dispatcher.reservationOf(rec.model, jobId);
    const how = await this.opts.dispatcher.cancel(rec.model, jobId, 'cancelled_by_owner');
    // Removed before it ran: it used nothing, and says so. A running one's worker ends it again,
    // with what it used (its status reads that end's usage).
    if (how === 'removed') {
      this.opts.admission.neverRan({ userId: rec.userId, jobId, reservation });
      this.opts.usage.neverRan({ ...rec, jobId }, 'cancelled');
    }
    await this.opts.log.end(
      jobId,
      'cancelled',
      'cancelled by its owner',
      how === 'removed' ? NO_USAGE : undefined,
    );
    return { id: jobId, object: 'job', status: 'cancelled' };
  }
}

const round = (ms: number | undefined) => (ms === undefined ? null : Math.round(ms));

interface Fold {
  status: JobStatus;
  transcript: Transcript;
  done?: DoneEvent;
  error?: ErrorEvent;
  /** `failed` for a hole in its log, while the log has no end yet: the job may still run. */
  unended?: true;
}

/**
 * A job's logged events → its status (the last attempt's view, as a follower would see it).
 *
 * Sequence numbers are checked as the live stream checks them (JobSubscription): a duplicate (a
 * write the worker retried after Redis had taken it) is skipped, and a gap in the attempt that
 * ends the job (events Redis lost or never took) makes the job `failed` with the reason, never
 * `completed` with text missing. `trimmed`: the log lost its start (JOB_LOG_MAX_EVENTS), so its
 * first event is where the check starts.
 */
export function foldEvents(events: readonly JobEvent[], opts: { trimmed?: boolean } = {}): Fold {
  let transcript = new Transcript();
  let status: JobStatus = 'queued';
  let attempt = 0;
  let next = 0;
  /** The log lost its start: its first event's seq is taken as it is. */
  let trimmed = opts.trimmed === true;
  /** Events missing from the current attempt. */
  let missing = 0;
  const gap = (usage?: DoneEvent['usage']): Fold => ({
    status: 'failed',
    transcript,
    ...(usage === undefined && { unended: true }),
    error: {
      id: events[0]?.id ?? '',
      seq: -1,
      attempt,
      type: 'error',
      error: 'internal_error',
      message: `the event log of this job is missing ${missing} event(s): its answer is incomplete`,
      ...(usage && { usage }),
    },
  });
  for (const [i, ev] of events.entries()) {
    // The gateway ended the job itself (deadline, lost, cancelled): whatever attempt runs. What
    // the job used is that of the worker's own end, when one follows (it aborted the generation,
    // and settled and counted it with these numbers), else what the gateway's end says.
    if (ev.type === 'error' && ev.gateway) {
      const worker = events
        .slice(i + 1)
        .find((e): e is DoneEvent | ErrorEvent => e.type === 'done' || (e.type === 'error' && !e.gateway));
      const usage = worker?.usage ?? ev.usage;
      return {
        status: ev.error === 'cancelled' ? 'cancelled' : 'failed',
        transcript,
        error: usage ? { ...ev, usage } : ev,
      };
    }
    if (ev.attempt < attempt) continue;
    if (ev.attempt > attempt) {
      // A re-run (its worker died) starts the answer over.
      attempt = ev.attempt;
      transcript = new Transcript();
      next = 0;
      missing = 0;
    }
    if (trimmed) {
      next = ev.seq;
      trimmed = false;
    }
    if (ev.seq < next) continue;
    missing += ev.seq - next;
    next = ev.seq + 1;
    if (ev.type === 'error') {
      return { status: ev.error === 'cancelled' ? 'cancelled' : 'failed', transcript, error: ev };
    }
    if (ev.type === 'started') status = 'in_progress';
    else if (ev.type === 'requeued') {
      // Nothing of this attempt reached anyone (it ended before its first token): no text lost.
      status = 'queued';
      missing = 0;
    } else if (ev.type === 'delta') {
      status = 'in_progress';
      transcript.add(ev.d);
    } else if (ev.type === 'done') {
      return missing > 0 ? gap(ev.usage) : { status: 'completed', transcript, done: ev };
    }
  }
  return missing > 0 ? gap() : { status, transcript };
}
