import type { Context } from 'hono';
import type { AppEnv } from './context.ts';

/**
 * Runs `fn` once the response has really ended — for a stream that is its last frame, not the
 * moment the handler returned — or at once outside a real server (`app.request()` in tests), or
 * when the connection is closed already (a client that left before its answer: no `close` is
 * coming).
 */
export function whenResponseEnds(c: Context<AppEnv>, fn: () => void): void {
  const outgoing = c.env?.outgoing;
  if (outgoing && !outgoing.writableFinished && !outgoing.destroyed) outgoing.once('close', fn);
  else fn();
}
