import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { messagesRoute } from './anthropic-route.ts';
import { completionsRoute } from './completions-route.ts';
import type { Route, SimContext } from './context.ts';
import { Engine } from './engine.ts';
import { sendError, sendJson } from './errors.ts';
import { FaultInjector } from './faults.ts';
import { healthRoute, modelsRoute, versionRoute } from './info-routes.ts';
import { SimMetrics } from './metrics.ts';
import { chatCompletionsRoute } from './openai-route.ts';
import { resolveOptions, type SimOptions } from './options.ts';
import { type LoggedRequest, RequestLog } from './request-log.ts';
import { Scheduler } from './scheduler.ts';
import {
  metricsRoute,
  requestsResetRoute,
  requestsRoute,
  statsResetRoute,
  statsRoute,
} from './sim-routes.ts';
import { type SimStats, StatsCounters } from './stats.ts';

export type { SimOptions } from './options.ts';
export type { LoggedRequest } from './request-log.ts';
export type { SimStats } from './stats.ts';

export interface Simulator {
  /** `http://host:port`, usable as an OpenAI `baseURL` once `/v1` is appended. */
  url: string;
  port: number;
  stats(): SimStats;
  /** The last 100 generation request bodies as received, oldest first (what `GET /sim/requests` shows). */
  requests(): LoggedRequest[];
  /** Stops every generation, cuts open connections and closes the listener. Idempotent. */
  close(): Promise<void>;
}

const ROUTES: readonly Route[] = [
  chatCompletionsRoute,
  completionsRoute,
  messagesRoute,
  modelsRoute,
  healthRoute,
  versionRoute,
  metricsRoute,
  statsRoute,
  statsResetRoute,
  requestsRoute,
  requestsResetRoute,
];

/** Longer than any load balancer's idle timeout, so benchmarks reuse their connections. */
const KEEP_ALIVE_MS = 65_000;

function createContext(options: SimOptions): SimContext {
  const scheduler = new Scheduler(options.maxNumSeqs);
  const metrics = new SimMetrics(options.models[0]!, scheduler);
  const stats = new StatsCounters(scheduler);
  const faults = new FaultInjector(options.failureRate, options.failureTypes, (type) => {
    stats.faults++;
    metrics.recordFault(type);
  });
  const engine = new Engine(options, scheduler, metrics, stats, faults);
  return {
    options,
    scheduler,
    metrics,
    stats,
    faults,
    engine,
    requests: new RequestLog(),
    startedAt: Math.floor(Date.now() / 1000),
  };
}

function routeTable(routes: readonly Route[]): Map<string, Map<string, Route>> {
  const table = new Map<string, Map<string, Route>>();
  for (const route of routes) {
    const byMethod = table.get(route.path) ?? new Map<string, Route>();
    byMethod.set(route.method, route);
    table.set(route.path, byMethod);
  }
  return table;
}

function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

export async function startSimulator(opts: Partial<SimOptions> = {}): Promise<Simulator> {
  const options = resolveOptions(opts);
  const ctx = createContext(options);
  const table = routeTable(ROUTES);

  const dispatch = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const arrival = performance.now();
    const requestId = req.headers['x-request-id'];
    if (typeof requestId === 'string') res.setHeader('x-request-id', requestId);
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const byMethod = table.get(query === -1 ? url : url.slice(0, query));
    const route = byMethod?.get(req.method ?? '');
    if (byMethod === undefined || route === undefined) {
      req.resume();
      // FastAPI's bodies, which is what vLLM answers for unknown paths and methods.
      if (byMethod === undefined) sendJson(res, 404, { detail: 'Not Found' });
      else sendJson(res, 405, { detail: 'Method Not Allowed' }, { allow: [...byMethod.keys()].join(', ') });
      return;
    }
    try {
      await route.handle(ctx, req, res, arrival);
    } catch (err) {
      sendError(res, route.errorFormat, err);
    }
  };

  const server = createServer((req, res) => {
    void dispatch(req, res);
  });
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  // Must exceed keepAliveTimeout, or Node may drop a reused connection while a request arrives.
  server.headersTimeout = KEEP_ALIVE_MS + 1_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    // Order: stop timers and free slots, stop accepting, then cut open streams and idle sockets
    // (server.close() alone waits for open SSE responses forever).
    closing ??= new Promise<void>((resolve) => {
      try {
        ctx.engine.abortAll();
      } catch {
        // Nothing to report at shutdown; the connections are cut below either way.
      }
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closing;
  };

  return {
    url: `http://${urlHost(options.host)}:${port}`,
    port,
    stats: () => ctx.stats.snapshot(),
    requests: () => ctx.requests.list(),
    close,
  };
}
