import type { Logger } from '@llmgw/observability';
import { ErrorType } from '@llmgw/protocol';
import { NO_USAGE } from '@llmgw/redis';
import type { Admission } from '../admission/admission.ts';
import type { EventLog } from '../durable/event-log.ts';
import type { UsageLedger } from '../usage/ledger.ts';
import type { Dispatcher } from './dispatcher.ts';
import type { SubmittedChat } from './submitted-chat.ts';

export interface JobCancellerOptions {
  dispatcher: Pick<Dispatcher, 'cancel'>;
  /** A job removed before it ran gives its quota and its user's place back. */
  admission: Pick<Admission, 'neverRan'>;
  /** …and is counted in the usage ledger, with no tokens… */
  usage: Pick<UsageLedger, 'neverRan'>;
  /** …and its end goes into its log, for its status. */
  events: Pick<EventLog, 'end'>;
  log: Logger;
  /** RESUME_GRACE_MS: a resumable request's client may come back this long; its worker then cancels. */
  graceMs: number;
}

/** Stops a submitted job wherever it is: still waiting (removed) or running (its worker aborts it). */
export class JobCanceller {
  constructor(private readonly opts: JobCancellerOptions) {}

  /**
   * The client closed its connection before the end: its own decision, so the job is cancelled
   * at once — backend aborted, slot freed, quota settled to what was generated. A resumable
   * request (`Prefer: resumable`, an Idempotency-Key) may instead come back within
   * RESUME_GRACE_MS, on any replica: the job goes on, and its worker cancels it if nobody follows
   * it by then. A follower's leaving, or an asynchronous job's, never stops it. Idempotent.
   */
  abandon(chat: SubmittedChat, reason: string): void {
    const ended = chat.sub.isEnded;
    chat.sub.close();
    if (ended || chat.follower || chat.async) return;
    if (chat.resumable && this.opts.graceMs > 0) {
      this.opts.log.info(
        { job_id: chat.jobId, grace_ms: this.opts.graceMs, reason },
        'client_left_job_continues',
      );
      return;
    }
    this.cancel(chat, reason);
  }

  /**
   * Removes the job if it waits, else has its worker abort it. Never throws: failures are logged.
   * `reason`: why; an error type when the gateway gave up on the job (the giver-up writes its end).
   */
  cancel(chat: SubmittedChat, reason: string): void {
    const { dispatcher, admission, usage, events, log } = this.opts;
    dispatcher.cancel(chat.model, chat.jobId, reason).then(
      (how) => {
        log.info({ job_id: chat.jobId, how, reason }, 'job_abandoned');
        // Removed before it ran: nothing was generated. (A running job is settled, counted and
        // ended by its worker.)
        if (how !== 'removed') return;
        admission.neverRan(chat);
        const gaveUp = ErrorType.safeParse(reason).data;
        usage.neverRan(chat, gaveUp ?? 'cancelled');
        if (gaveUp === undefined) {
          events
            .end(chat.jobId, 'cancelled', 'cancelled before it started: its client left', NO_USAGE)
            .catch((err: Error) => log.warn({ job_id: chat.jobId, err: err.message }, 'job_end_failed'));
        }
      },
      (err: Error) => log.warn({ job_id: chat.jobId, err: err.message }, 'cancel_failed'),
    );
  }
}
