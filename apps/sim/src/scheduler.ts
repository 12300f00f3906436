/**
 * vLLM's batch limit (`--max-num-seqs`): at most that many sequences decode at once; the rest wait
 * FIFO, and their time to first token includes the wait, as on a real server.
 */
export interface Lease {
  /** Frees the slot (the next waiter starts at once) or leaves the wait queue. Idempotent. */
  release(): void;
}

class SlotLease implements Lease {
  state: 'waiting' | 'running' | 'released' = 'waiting';

  constructor(
    private readonly scheduler: Scheduler,
    readonly start: () => void,
  ) {}

  release(): void {
    if (this.state === 'released') return;
    const wasRunning = this.state === 'running';
    this.state = 'released';
    this.scheduler.onRelease(this, wasRunning);
  }
}

export class Scheduler {
  private runningCount = 0;
  private peak = 0;
  /** A Set keeps insertion order (FIFO) and removes a disconnected waiter in O(1). */
  private readonly queue = new Set<SlotLease>();

  constructor(readonly maxNumSeqs: number) {}

  get running(): number {
    return this.runningCount;
  }

  get waiting(): number {
    return this.queue.size;
  }

  get peakRunning(): number {
    return this.peak;
  }

  resetPeak(): void {
    this.peak = this.runningCount;
  }

  /** `start` runs when the request gets a slot: synchronously if one is free, else when one frees up. */
  acquire(start: () => void): Lease {
    const lease = new SlotLease(this, start);
    if (this.runningCount < this.maxNumSeqs) this.run(lease);
    else this.queue.add(lease);
    return lease;
  }

  /** @internal called by a lease */
  onRelease(lease: SlotLease, wasRunning: boolean): void {
    if (!wasRunning) {
      this.queue.delete(lease);
      return;
    }
    this.runningCount--;
    const next = this.queue.values().next();
    if (!next.done) {
      this.queue.delete(next.value);
      this.run(next.value);
    }
  }

  private run(lease: SlotLease): void {
    lease.state = 'running';
    this.runningCount++;
    if (this.runningCount > this.peak) this.peak = this.runningCount;
    lease.start();
  }
}
