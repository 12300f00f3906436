import type { Context } from 'hono';
import type { AppEnv } from '../context.ts';

/**
 * Whether the HTTP client of a request is still there. Its connection closing before the answer
 * was written whole is the client's own decision (a "stop" button, an AbortController, a `break`
 * out of a stream loop): the relay then cancels the job, unless the request asked to be
 * resumable (routes/generation.ts).
 *
 * Watched from Node's response (`close` before `finish`), from the moment the route starts: a
 * client that leaves during admission is known to be gone when the job is submitted, though no
 * later listener would hear the `close` again. Not from `c.req.raw.signal`: @hono/node-server
 * builds a whole fetch Request for it, and only aborts it if it was built before the close.
 */
export interface ClientLink {
  readonly gone: boolean;
  /** Calls `fn` once when the client leaves, or at once if it has left already. */
  onGone(fn: () => void): void;
}

export function watchClient(c: Context<AppEnv>): ClientLink {
  const res = c.env?.outgoing;
  if (!res) return signalLink(c.req.raw.signal);
  let gone = false;
  let listeners: (() => void)[] = [];
  const leave = () => {
    if (gone || res.writableFinished) return;
    gone = true;
    const fns = listeners;
    listeners = [];
    for (const fn of fns) fn();
  };
  // Closed already (a client that sent its body and left at once): no `close` is coming.
  if (res.destroyed || res.socket?.destroyed) gone = true;
  else res.once('close', leave);
  return {
    get gone() {
      return gone;
    },
    onGone(fn) {
      if (gone) fn();
      else listeners.push(fn);
    },
  };
}

/** `app.request()` (tests without a server): the Request's own signal. */
function signalLink(signal: AbortSignal): ClientLink {
  return {
    get gone() {
      return signal.aborted;
    },
    onGone(fn) {
      if (signal.aborted) fn();
      else signal.addEventListener('abort', fn, { once: true });
    },
  };
}
