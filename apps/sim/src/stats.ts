import type { Scheduler } from './scheduler.ts';

/** The simulator's counters, as `sim.stats()` returns them; {@link statsBody} is the HTTP form. */
export interface SimStats {
  running: number;
  waiting: number;
  peakRunning: number;
  /** Generation requests received (chat completions, completions, messages), errors included. */
  requests: number;
  /** Generations that ran to their end (stop, length or stop string). */
  completed: number;
  /** Requests whose client went away before the response finished. */
  aborted: number;
  /**
   * When the last abort was seen (epoch ms, sub-millisecond): how long after its client's close
   * a gateway's abort reached the backend (e2e/src/compat/abort-latency.test.ts).
   */
  lastAbortedAt: number | undefined;
  /** Injected failures of every type. */
  faults: number;
}

/** The body of `GET /sim/stats`: {@link SimStats} with snake_case keys, as all the simulator's JSON. */
export interface SimStatsBody {
  running: number;
  waiting: number;
  peak_running: number;
  requests: number;
  completed: number;
  aborted: number;
  last_aborted_at: number | null;
  faults: number;
}

export function statsBody(s: SimStats): SimStatsBody {
  return {
    running: s.running,
    waiting: s.waiting,
    peak_running: s.peakRunning,
    requests: s.requests,
    completed: s.completed,
    aborted: s.aborted,
    last_aborted_at: s.lastAbortedAt ?? null,
    faults: s.faults,
  };
}

export class StatsCounters {
  requests = 0;
  completed = 0;
  aborted = 0;
  lastAbortedAt: number | undefined;
  faults = 0;

  constructor(private readonly scheduler: Scheduler) {}

  snapshot(): SimStats {
    return {
      running: this.scheduler.running,
      waiting: this.scheduler.waiting,
      peakRunning: this.scheduler.peakRunning,
      requests: this.requests,
      completed: this.completed,
      aborted: this.aborted,
      lastAbortedAt: this.lastAbortedAt,
      faults: this.faults,
    };
  }

  /** Counters to zero and peakRunning to the current load; running and waiting are live values. */
  /** A request's client went away. */
  abortSeen(): void {
    this.aborted++;
    this.lastAbortedAt = performance.timeOrigin + performance.now();
  }

  reset(): void {
    this.requests = 0;
    this.completed = 0;
    this.aborted = 0;
    this.lastAbortedAt = undefined;
    this.faults = 0;
    this.scheduler.resetPeak();
  }
}
