import type { JobCanceller } from './cancel.ts';
import type { SubmittedChat } from './submitted-chat.ts';

/**
 * This process's requests with a job under way (streaming or not), from enqueue until their
 * subscription closes: what shutdown waits for ({@link drained}) and then ends ({@link failAll}).
 */
export class OpenChats {
  private readonly open = new Set<SubmittedChat>();
  private waiters: (() => void)[] = [];

  constructor(
    private readonly canceller: Pick<JobCanceller, 'cancel'>,
    /** RESUME_GRACE_MS > 0: a stream cut by shutdown can be resumed elsewhere. */
    private readonly resumable = false,
  ) {}

  get count(): number {
    return this.open.size;
  }

  /** Counts `chat` until its subscription closes. */
  add(chat: SubmittedChat): void {
    this.open.add(chat);
    chat.sub.whenClosed.then(() => {
      this.open.delete(chat);
      if (this.open.size > 0) return;
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
    });
  }

  /** Resolves once no request is open (at once if none is). */
  drained(): Promise<void> {
    if (this.open.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** {@link drained}, or `ms` if that comes first (shutdown's grace, then its flush). */
  async drainedWithin(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.drained(), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
  }

  /**
   * Shutdown after the grace period: every request still open ends with a `shutting_down` error
   * (an error frame, or a 503). With a resume grace its job goes on, for the client to resume on
   * another replica (its worker cancels it if nobody does); without, it is cancelled, so no GPU
   * works for a closed stream. Asynchronous jobs simply go on.
   */
  failAll(message: string): void {
    for (const chat of this.open) {
      if (chat.async && !chat.follower) {
        chat.sub.close();
        continue;
      }
      chat.sub.fail('shutting_down', message);
      // A follower's job is not this request's to stop.
      if (!this.resumable && !chat.follower) this.canceller.cancel(chat, 'api_shutdown');
    }
  }
}
