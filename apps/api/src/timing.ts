import type { Context } from 'hono';
import type { AppEnv } from './context.ts';

export interface GatewayTiming {
  /** Request received → job enqueued (auth, limits, validation, admission), ms. */
  admissionMs: number;
  /** Enqueued → started on a worker, ms. */
  queueMs?: number;
  /** The backend's own time to first token, ms. */
  backendTtftMs?: number;
  /** The backend's whole generation, ms. */
  backendMs?: number;
  /** Request received → response ready, ms. */
  totalMs?: number;
}

const r1 = (ms: number) => Math.round(ms * 10) / 10;

/**
 * `Server-Timing` (shown by browsers' devtools) and `X-Gateway-Overhead-Ms`: what the gateway
 * itself added, in the spirit of LiteLLM's x-litellm-overhead-duration-ms. For a stream the
 * headers leave before the generation, so they carry the admission part; a complete response
 * also carries queue wait, backend TTFT and the overhead = total − queue wait − backend time.
 */
export function setTimingHeaders(c: Context<AppEnv>, t: GatewayTiming): void {
  const parts = [`admission;dur=${r1(t.admissionMs)}`];
  if (t.queueMs !== undefined) parts.push(`queue;dur=${r1(t.queueMs)}`);
  if (t.backendTtftMs !== undefined)
    parts.push(`ttft;desc="backend time to first token";dur=${r1(t.backendTtftMs)}`);
  if (t.backendMs !== undefined) parts.push(`backend;dur=${r1(t.backendMs)}`);
  if (t.totalMs !== undefined) parts.push(`total;dur=${r1(t.totalMs)}`);
  c.header('Server-Timing', parts.join(', '));
  const overhead =
    t.totalMs !== undefined && t.backendMs !== undefined
      ? Math.max(0, t.totalMs - (t.queueMs ?? 0) - t.backendMs)
      : t.admissionMs;
  c.header('X-Gateway-Overhead-Ms', String(r1(overhead)));
}
