import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Engine } from './engine.ts';
import type { ErrorFormat } from './errors.ts';
import type { FaultInjector } from './faults.ts';
import type { SimMetrics } from './metrics.ts';
import type { SimOptions } from './options.ts';
import type { RequestLog } from './request-log.ts';
import type { Scheduler } from './scheduler.ts';
import type { StatsCounters } from './stats.ts';

/** Everything one simulator instance shares between its routes. */
export interface SimContext {
  options: SimOptions;
  scheduler: Scheduler;
  metrics: SimMetrics;
  stats: StatsCounters;
  faults: FaultInjector;
  engine: Engine;
  /** Bodies of the generation requests, for `GET /sim/requests`. */
  requests: RequestLog;
  /** Unix seconds at start, reported as `created` by `/v1/models`. */
  startedAt: number;
}

export interface Route {
  method: 'GET' | 'POST';
  path: string;
  /** Wire format of errors thrown by `handle`. */
  errorFormat: ErrorFormat;
  /** `arrival` is `performance.now()` when the request came in. */
  handle(ctx: SimContext, req: IncomingMessage, res: ServerResponse, arrival: number): void | Promise<void>;
}
