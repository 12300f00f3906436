import type { ErrorEvent, ErrorType, JobEvent } from '@llmgw/protocol';

/**
 * The api's view of one job's event stream, in order and exactly once.
 *
 * - Duplicates (seq already seen) are dropped. A gap (events published while the subscriber
 *   was reconnecting, or while the job's worker waited for Redis to come back) is filled from
 *   the job's event log when there is one ({@link readLog}): live events are held while the log
 *   is read, then follow it. A gap the log cannot fill either ends the stream with an error
 *   rather than silently missing text.
 * - A new `attempt` (BullMQ re-ran the job after its worker died) is followed only if nothing
 *   was relayed yet; once text reached the client, a re-run would duplicate it, so the stream
 *   ends with `worker_lost`.
 *
 * The consumer iterates batches: everything that arrived since its last turn, so one socket
 * write can carry several events under load.
 */
export class JobSubscription implements AsyncIterable<JobEvent[]> {
  private attempt = 0;
  private nextSeq = 0;
  private buffer: JobEvent[] = [];
  private wake: (() => void) | undefined;
  private ended = false;
  private closed = false;
  private resolveClosed!: () => void;
  /** Resolves once the subscription is closed (stream over, client gone). */
  readonly whenClosed = new Promise<void>((resolve) => {
    this.resolveClosed = resolve;
  });
  /** Set once a delta (text, reasoning, tool call) was accepted. */
  relayedText = false;
  /** A worker runs it now (false again after a `requeued`). */
  started = false;
  /** Backend failures before the first token that put the job back on the queue. */
  requeues = 0;
  /**
   * Called when the gateway gives up on the job itself (declared lost, deadline): the job must
   * then be cancelled, so that no worker starts or re-runs it for a stream nobody reads.
   */
  onGiveUp: ((error: ErrorType, message: string) => void) | undefined;
  lastEventAt: number;

  /**
   * @param readLog the job's logged events, oldest first (EventLog.read): where a gap is filled
   *   from. Without it, a gap ends the stream at once.
   */
  constructor(
    readonly jobId: string,
    private readonly onClose: (sub: JobSubscription) => void,
    private readonly readLog?: () => Promise<readonly JobEvent[]>,
  ) {
    this.lastEventAt = Date.now();
  }

  /** A read of the log is under way ({@link catchUp}). */
  private catchingUp = false;

  get isEnded(): boolean {
    return this.ended;
  }

  /** Live events held back while the job's log is read ({@link replay}). */
  private held: JobEvent[] | undefined;

  /**
   * For a follower that joins a job under way: live events are held until {@link replay} has
   * delivered the job's log, then they follow it (those the log already had are dropped as
   * duplicates), so nothing is lost or repeated between the two.
   */
  holdLive(): void {
    this.held ??= [];
  }

  /**
   * Delivers the job's logged events, then whatever arrived live meanwhile. A gap found here is
   * final: the log is all there is.
   */
  replay(logged: readonly JobEvent[]): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const ev of logged) this.accept(ev, false);
    for (const ev of held) this.accept(ev, false);
  }

  /**
   * Reads the job's log and delivers what this subscription missed, live events held meanwhile:
   * after a gap, and after the subscriber connection came back (what was published while it was
   * away reached nobody here, and the job's end may be among it).
   */
  catchUp(): void {
    if (!this.readLog || this.catchingUp || this.ended) return;
    this.catchingUp = true;
    this.holdLive();
    this.readLog().then(
      (logged) => {
        this.catchingUp = false;
        this.replay(logged);
      },
      () => {
        // Redis refused the read: what was held is all there is (a gap in it ends the stream).
        this.catchingUp = false;
        this.replay([]);
      },
    );
  }

  /** Called by the hub for every event with this job id. */
  deliver(ev: JobEvent): void {
    if (this.held) this.held.push(ev);
    else this.accept(ev);
  }

  private accept(ev: JobEvent, mayCatchUp = true): void {
    if (this.ended) return;
    this.lastEventAt = Date.now();
    // The gateway ended the job itself (deadline, lost, cancelled): whatever attempt runs.
    if (ev.type === 'error' && ev.gateway) {
      this.push(ev);
      return;
    }
    if (ev.attempt < this.attempt) return;
    if (ev.attempt > this.attempt) {
      if (this.relayedText) {
        this.fail('worker_lost', 'the worker serving this request was lost mid-stream');
        return;
      }
      this.attempt = ev.attempt;
      this.nextSeq = 0;
    }
    if (ev.seq < this.nextSeq) return;
    if (ev.seq > this.nextSeq) {
      if (mayCatchUp && this.readLog) {
        // Held with whatever follows; delivered after the log has filled the gap (or not).
        this.holdLive();
        this.held?.push(ev);
        this.catchUp();
        return;
      }
      // The job's own end after the gap says why (its worker could not write what is missing).
      if (ev.type === 'error') this.push(ev);
      else this.fail('internal_error', `lost ${ev.seq - this.nextSeq} event(s) of this stream`);
      return;
    }
    this.nextSeq++;
    if (ev.type === 'heartbeat') return;
    if (ev.type === 'requeued') {
      // Nothing reached the client: it only sees a later first token.
      this.started = false;
      this.requeues++;
      return;
    }
    if (ev.type === 'started') this.started = true;
    if (ev.type === 'delta') this.relayedText = true;
    this.push(ev);
  }

  /** A queue position update for a job that has not started (api-local, no sequence number). */
  queued(position: number): void {
    if (this.ended || this.started) return;
    this.push({ id: this.jobId, seq: -1, attempt: this.attempt, type: 'queued', position });
  }

  /** Ends the stream with an error of the gateway's own (watchdog, shutdown, lost events). */
  fail(error: ErrorType, message: string): void {
    if (this.ended) return;
    const ev: ErrorEvent = { id: this.jobId, seq: -1, attempt: this.attempt, type: 'error', error, message };
    this.push(ev);
  }

  /** Ends the stream with an error and has the job cancelled wherever it is. */
  giveUp(error: ErrorType, message: string): void {
    if (this.ended) return;
    this.fail(error, message);
    this.onGiveUp?.(error, message);
  }

  /** Stops listening (client gone or stream finished). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ended = true;
    this.onClose(this);
    this.resolveClosed();
    this.wake?.();
  }

  private push(ev: JobEvent): void {
    this.buffer.push(ev);
    if (ev.type === 'done' || ev.type === 'error') this.ended = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<JobEvent[]> {
    try {
      while (true) {
        if (this.buffer.length > 0) {
          const batch = this.buffer;
          this.buffer = [];
          yield batch;
          const last = batch[batch.length - 1];
          if (last && (last.type === 'done' || last.type === 'error')) return;
          continue;
        }
        if (this.closed) return;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
      }
    } finally {
      this.close();
    }
  }
}
