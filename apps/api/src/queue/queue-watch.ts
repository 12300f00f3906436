import type { Logger } from '@llmgw/observability';
import type { ErrorType } from '@llmgw/protocol';
import type { Dispatcher } from './dispatcher.ts';
import type { SubmittedChat } from './submitted-chat.ts';

export interface QueueWatchOptions {
  dispatcher: Dispatcher;
  log: Logger;
  /** A job not started after this long is removed and its client told `queue_timeout`. */
  queueTimeoutMs: number;
  /** How often waiting clients get their queue position. */
  positionIntervalMs: number;
  /** A job waiting this long is raised to the top priority. */
  agingMs: number;
  /**
   * A job removed for its deadline (never ran): give its quota back, count it. `error`: how its
   * client is told it ended (`queue_timeout`, or `backend_unavailable` when no backend could take it).
   */
  onRemoved(chat: SubmittedChat, error: Extract<ErrorType, 'queue_timeout' | 'backend_unavailable'>): void;
  /** True when no live worker of the model can take jobs (none alive, or every breaker open). */
  noWorkingBackend(model: string): Promise<boolean>;
}

/**
 * Priorities: a band per tier of the tier table, and inside it the user's jobs in flight
 * (admission/fair-share.ts); lower runs first; every job is prioritized (≥ 2), none uses BullMQ's
 * priority 0, which would bypass the ordering.
 *
 * Starvation guard: a job that has waited PRIORITY_AGING_MS is raised to priority 1, the top, so
 * a steady stream of higher-tier traffic delays a lower-tier request by at most that long plus
 * the top-priority jobs already ahead of it (and QUEUE_TIMEOUT_MS still bounds every wait).
 */
export const TOP_PRIORITY = 1;

interface Waiting {
  chat: SubmittedChat;
  priority: number;
  deadline: NodeJS.Timeout;
}

/**
 * Looks after this process's jobs while they wait: enforces the queue deadline, sends queue
 * positions to their streams, and applies the starvation guard. One ticker for all of them,
 * one Redis round trip per tick.
 */
export class QueueWatch {
  private readonly waiting = new Map<string, Waiting>();
  private readonly ticker: NodeJS.Timeout;

  constructor(private readonly opts: QueueWatchOptions) {
    this.ticker = setInterval(() => void this.tick(), opts.positionIntervalMs);
    this.ticker.unref();
  }

  watch(chat: SubmittedChat, priority: number): void {
    const deadline = setTimeout(() => void this.expire(chat), this.opts.queueTimeoutMs);
    deadline.unref();
    this.waiting.set(chat.jobId, { chat, priority, deadline });
  }

  stop(): void {
    clearInterval(this.ticker);
    for (const w of this.waiting.values()) clearTimeout(w.deadline);
    this.waiting.clear();
  }

  private forget(jobId: string): void {
    const w = this.waiting.get(jobId);
    if (!w) return;
    clearTimeout(w.deadline);
    this.waiting.delete(jobId);
  }

  /**
   * The deadline holds until the first token, across retries: a job put back after a backend
   * failure waits again, and is removed like any other once its time is up. Its client then hears
   * why: no working backend (it was tried, or every worker's breaker is open) or no free slot.
   */
  private async expire(chat: SubmittedChat): Promise<void> {
    this.forget(chat.jobId);
    const { sub } = chat;
    if (sub.relayedText || sub.isEnded || sub.started) return;
    let noBackend = sub.requeues > 0;
    let removed = false;
    try {
      removed = await this.opts.dispatcher.removeWaiting(chat.model, chat.jobId);
      if (!removed) return; // it just started
      noBackend ||= await this.opts.noWorkingBackend(chat.model);
    } catch (err) {
      this.opts.log.warn({ job_id: chat.jobId, err: (err as Error).message }, 'queue_timeout_remove_failed');
    }
    if (removed) this.opts.onRemoved(chat, noBackend ? 'backend_unavailable' : 'queue_timeout');
    const waited = Math.round(this.opts.queueTimeoutMs / 1000);
    this.opts.log.info({ job_id: chat.jobId, model: chat.model, no_backend: noBackend }, 'queue_timeout');
    if (noBackend) {
      sub.giveUp('backend_unavailable', `no backend for model '${chat.model}' answered within ${waited} s`);
    } else {
      sub.giveUp('queue_timeout', `waited ${waited} s in the queue without a free slot`);
    }
  }

  private async tick(): Promise<void> {
    const items: Waiting[] = [];
    for (const [id, w] of this.waiting) {
      if (w.chat.sub.relayedText || w.chat.sub.isEnded) this.forget(id);
      else if (!w.chat.sub.started) items.push(w);
    }
    if (items.length === 0) return;
    try {
      const positions = await this.opts.dispatcher.positions(items.map((w) => w.chat));
      const now = Date.now();
      items.forEach((w, i) => {
        const position = positions[i];
        if (position !== undefined) w.chat.sub.queued(position);
        if (w.priority > TOP_PRIORITY && now - w.chat.enqueuedAt >= this.opts.agingMs) {
          w.priority = TOP_PRIORITY;
          this.opts.dispatcher.promote(w.chat.model, w.chat.jobId, TOP_PRIORITY).then(
            (ok) => ok && this.opts.log.info({ job_id: w.chat.jobId }, 'job_priority_aged'),
            () => {},
          );
        }
      });
    } catch (err) {
      this.opts.log.debug({ err: (err as Error).message }, 'queue_watch_failed');
    }
  }
}
