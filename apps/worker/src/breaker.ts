import type { BreakerState } from '@llmgw/protocol';

export interface BreakerOptions {
  /** Consecutive backend failures that open the breaker. */
  failures: number;
  /** First wait before a half-open probe; doubles after each failed probe, up to `maxCooldownMs`. */
  cooldownMs: number;
  maxCooldownMs: number;
  /** The breaker opened: stop taking jobs. */
  onOpen(reason: string): void;
  /** The half-open probe succeeded: take jobs again. */
  onClose(): void;
  /** A real one-token completion; resolves when the backend answered, rejects when it did not. */
  probe(): Promise<void>;
}

/**
 * A circuit breaker for one model on one worker. A worker whose backend fails would otherwise
 * fail a job in milliseconds, free its slot and take the next one, draining the queue a healthy
 * replica should serve. Closed: jobs flow, failures are counted. Open: the worker takes no jobs
 * for the model (its slots leave the model's capacity). After a cooldown it is half-open and
 * probes the backend with a real completion — not `/health`, which an erroring vLLM still
 * answers — and closes again on success.
 */
export class CircuitBreaker {
  private consecutive = 0;
  private current: BreakerState | undefined;
  private cooldown: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly opts: BreakerOptions) {
    this.cooldown = opts.cooldownMs;
  }

  /** Open or half-open, with why; undefined while closed. */
  get state(): BreakerState | undefined {
    return this.current;
  }

  get isClosed(): boolean {
    return this.current === undefined;
  }

  success(): void {
    this.consecutive = 0;
  }

  /** A backend failure (not the request's fault); opens the breaker at the threshold. */
  failure(reason: string): void {
    this.consecutive++;
    if (this.isClosed && this.consecutive >= this.opts.failures) {
      this.open(`${this.consecutive} consecutive backend failures, last: ${reason}`);
    }
  }

  /** Opens at once (e.g. the health probe cannot reach the backend). */
  trip(reason: string): void {
    if (this.isClosed) this.open(reason);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private open(reason: string): void {
    this.current = { state: 'open', reason, since: Date.now() };
    this.opts.onOpen(reason);
    this.schedule();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.halfOpen(), this.cooldown);
    this.timer.unref();
  }

  private async halfOpen(): Promise<void> {
    if (this.stopped || !this.current) return;
    this.current = { ...this.current, state: 'half_open' };
    try {
      await this.opts.probe();
    } catch (err) {
      if (this.stopped) return;
      this.cooldown = Math.min(this.cooldown * 2, this.opts.maxCooldownMs);
      this.current = { state: 'open', reason: `probe failed: ${(err as Error).message}`, since: Date.now() };
      this.schedule();
      return;
    }
    if (this.stopped) return;
    this.current = undefined;
    this.consecutive = 0;
    this.cooldown = this.opts.cooldownMs;
    this.opts.onClose();
  }
}
