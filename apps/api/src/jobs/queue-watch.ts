import type { Logger } from '@llmgw/observability';
import type { SubmittedChat } from './chat-service.ts';
import type { Dispatcher } from './dispatcher.ts';

export interface QueueWatchOptions {
  dispatcher: Dispatcher;
  log: Logger;
  /** A job not started after this long is removed and its client told `queue_timeout`. */
  queueTimeoutMs: number;
  /** How often waiting clients get their queue position. */
  positionIntervalMs: number;
  /** A job waiting this long is raised to the top priority. */
  agingMs: number;
  /** A job removed for its deadline (never ran): give its quota back. */
  onRemoved(chat: SubmittedChat): void;
}

/**
 * Priorities come from the tier table (enterprise 1, pro 2, free 3 by default; lower runs first;
 * every tier is prioritized, none uses BullMQ's priority 0, which would bypass the ordering).
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

  private async expire(chat: SubmittedChat): Promise<void> {
    this.forget(chat.jobId);
    if (chat.sub.started || chat.sub.isEnded) return;
    try {
      if (!(await this.opts.dispatcher.removeWaiting(chat.model, chat.jobId))) return; // it just started
      this.opts.onRemoved(chat);
    } catch (err) {
      this.opts.log.warn({ job_id: chat.jobId, err: (err as Error).message }, 'queue_timeout_remove_failed');
    }
    this.opts.log.info({ job_id: chat.jobId, model: chat.model }, 'queue_timeout');
    chat.sub.fail(
      'queue_timeout',
      `waited ${Math.round(this.opts.queueTimeoutMs / 1000)} s in the queue without a free slot`,
    );
  }

  private async tick(): Promise<void> {
    const items: Waiting[] = [];
    for (const [id, w] of this.waiting) {
      if (w.chat.sub.started || w.chat.sub.isEnded) this.forget(id);
      else items.push(w);
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
