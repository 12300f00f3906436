import type { Logger } from '@llmgw/observability';
import type { Keys } from '@llmgw/redis';
import { type Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { WorkerMetrics } from './metrics.ts';
import type { ChatProcessor } from './processor.ts';

/** How often the lane looks at the interactive queue, ms. */
const GATE_EVERY_MS = 100;

/** Batch slots of a worker: `fraction` of its slots per model, at least one while the lane is on. */
export const batchSlotsOf = (concurrency: number, fraction: number): number =>
  fraction <= 0 ? 0 : Math.max(1, Math.floor(concurrency * fraction));

export interface BatchLaneOptions {
  model: string;
  keys: Keys;
  /** BullMQ's blocking connection (shared with the interactive Workers). */
  connection: Redis;
  /** At most this many batch requests run at once on this worker (batchSlotsOf). */
  slots: number;
  process: ChatProcessor;
  name: string;
  lockMs: number;
  log: Logger;
  metrics: WorkerMetrics;
  /** True while the lane must take nothing whatever the queue says (the model's breaker is open). */
  heldBack?: () => boolean;
}

/**
 * The batch lane of one model on one worker: a BullMQ Worker on the model's batch queue that
 * takes a request only while no interactive job waits for the model. Two checks hold it back:
 * this gate, which pauses the Worker's fetching whenever the interactive queue has waiting jobs
 * (looked at every 100 ms), and the processor, which looks again as a request starts and puts it
 * back for later if an interactive job arrived meanwhile ({@link interactiveWaiting}). A running
 * batch request is never stopped: the wait it can cause an interactive request is bounded by one
 * batch request's generation, on at most `slots` of the worker's slots (BATCH_MAX_SLOTS_FRACTION).
 */
export class BatchLane {
  readonly worker: Worker;
  private readonly interactive: Queue;
  private timer: NodeJS.Timeout | undefined;
  private open = true;
  private checking = false;

  constructor(private readonly opts: BatchLaneOptions) {
    const { keys, model, connection } = opts;
    this.interactive = new Queue(keys.queueName(model), { connection, prefix: keys.bullPrefix });
    this.interactive.on('error', () => {});
    this.worker = new Worker(keys.batchQueueName(model), opts.process, {
      connection,
      prefix: keys.bullPrefix,
      concurrency: opts.slots,
      name: opts.name,
      lockDuration: opts.lockMs,
      stalledInterval: Math.max(1000, Math.floor(opts.lockMs / 2)),
      // A request whose worker died is handed out again once; the processor refuses to run at a
      // backend one that reached a backend before (keys.batchRan).
      maxStalledCount: 1,
    });
    this.worker.on('error', (err) => opts.log.error({ err: err.message, model }, 'batch_worker_error'));
    opts.metrics.batchSlots.set({ model }, opts.slots);
    opts.metrics.batchLaneOpen.set({ model }, 1);
    this.timer = setInterval(() => void this.gate(), GATE_EVERY_MS);
    this.timer.unref();
  }

  /** Jobs waiting in the model's interactive queue (plain and prioritized). */
  async interactiveWaiting(): Promise<number> {
    const c = await this.interactive.getJobCounts('wait', 'prioritized');
    return (c.wait ?? 0) + (c.prioritized ?? 0);
  }

  private async gate(): Promise<void> {
    if (this.checking || this.timer === undefined) return;
    this.checking = true;
    try {
      const hold = this.opts.heldBack?.() === true || (await this.interactiveWaiting()) > 0;
      if (hold && this.open) {
        this.open = false;
        // Fetching stops now; the requests already running finish (never preempted).
        void this.worker.pause(true);
      } else if (!hold && !this.open) {
        this.open = true;
        this.worker.resume();
      }
      this.opts.metrics.batchLaneOpen.set({ model: this.opts.model }, this.open ? 1 : 0);
    } catch {
      // Redis away: the lane stays as it was; BullMQ's own fetching fails and retries meanwhile.
    } finally {
      this.checking = false;
    }
  }

  /** The gate stops (a shutdown: the Worker is closed with the others, its requests drained). */
  stopGate(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  async close(): Promise<void> {
    this.stopGate();
    await Promise.allSettled([this.worker.close(), this.interactive.close()]);
  }
}

/** Whether a job came from a batch queue (its data says so; the queue name too). */
export const isBatchJob = (job: Job): boolean =>
  (job.data as { batch?: unknown } | null)?.batch !== undefined;
