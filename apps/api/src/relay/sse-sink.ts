import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { AppEnv } from '../context.ts';

/** Where a stream's SSE text goes: whole frames, written in order. */
export interface SseSink {
  /** Resolves once the text is handed to the socket, or the client is gone (check `aborted`). */
  write(text: string): Promise<void>;
  /** The client went away (its connection closed before the stream ended). */
  readonly aborted: boolean;
}

/**
 * @hono/node-server writes nothing for a response with this header (its `X_ALREADY_SENT`) and no
 * body, but only for a fetch `Response`: its own lighter Response class (global once a server has
 * started) takes another path and writes a head. Its `RESPONSE_ALREADY_SENT` is built with
 * whatever `Response` is global when it is first imported, so this one is built with the native
 * class explicitly (the parent of node-server's when it has replaced the global), whatever the
 * order of imports and servers in the process.
 */
const ALREADY_SENT: Response = (() => {
  const global = globalThis.Response;
  const parent: unknown = Object.getPrototypeOf(global);
  const Native =
    typeof parent === 'function' && parent.name === 'Response' ? (parent as typeof Response) : global;
  return new Native(null, { headers: { 'x-hono-already-sent': 'true' } });
})();

const SSE_HEADERS = {
  'Content-Type': 'text/event-stream',
  'Cache-Control': 'no-cache',
  Connection: 'keep-alive',
  'X-Accel-Buffering': 'no',
};

/**
 * Answers the request with a Server-Sent Events stream fed by `run`. Under @hono/node-server the
 * frames go straight to Node's response (`res.write`, one call per batch; no web streams, no
 * TextEncoder: the relay's hot path); under `app.request()` (tests without a server) through
 * Hono's streamSSE. Either way a slow client applies backpressure (`write` waits for `drain`),
 * `onAbort` runs once when the client leaves, and an error in `run` ends the stream (logged).
 */
export function sseResponse(
  c: Context<AppEnv>,
  run: (sink: SseSink) => Promise<void>,
  onAbort: () => void,
): Response | Promise<Response> {
  const res = c.env?.outgoing;
  if (!res) {
    for (const [k, v] of Object.entries(SSE_HEADERS)) c.header(k, v);
    return streamSSE(c, async (stream) => {
      stream.onAbort(onAbort);
      await run({
        write: async (text) => {
          await stream.write(text);
        },
        get aborted() {
          return stream.aborted;
        },
      });
    });
  }
  // The headers set so far (request id, timing, job id) with the stream's own. Hono is handed
  // the marker response, for which @hono/node-server writes nothing: the answer is under way.
  const head: Record<string, string> = {};
  c.body(null, 200, SSE_HEADERS).headers.forEach((v, k) => {
    head[k] = v;
  });
  res.writeHead(200, head);
  res.flushHeaders();
  let aborted = false;
  let drained: (() => void) | undefined;
  res.on('drain', () => drained?.());
  res.once('close', () => {
    if (!res.writableFinished) {
      aborted = true;
      onAbort();
    }
    drained?.();
  });
  const sink: SseSink = {
    write(text) {
      if (aborted || res.writableEnded) return Promise.resolve();
      if (res.write(text)) return Promise.resolve();
      return new Promise<void>((resolve) => {
        drained = () => {
          drained = undefined;
          resolve();
        };
      });
    },
    get aborted() {
      return aborted;
    },
  };
  run(sink)
    .catch((err: Error) => c.get('log').error({ err: err.message }, 'stream_relay_failed'))
    .finally(() => res.end());
  return ALREADY_SENT;
}
