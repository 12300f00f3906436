import http from 'node:http';
import https from 'node:https';
import type { Usage } from '@llmgw/protocol';
import { createParser } from 'eventsource-parser';
import { BackendError } from './backend.ts';
import { cancelled, typeFromStatus } from './map-error.ts';

export interface SsePostOptions {
  url: URL;
  headers: Record<string, string>;
  body: string;
  signal: AbortSignal;
  /** The whole exchange, headers to the end of the stream: past it, `backend_timeout`. */
  timeoutMs: number;
  /** Each `data:` of the stream, parsed, in order; `[DONE]` is not passed on. */
  onData(data: unknown): void;
  /** What was generated so far, for an error's partial usage. */
  partial(): Usage;
}

/** The longest error body read from a backend (the rest is not worth the memory). */
const MAX_ERROR_BODY = 64 * 1024;

const agents = {
  'http:': new http.Agent({ keepAlive: true, scheduling: 'lifo' }),
  'https:': new https.Agent({ keepAlive: true, scheduling: 'lifo' }),
};

/**
 * POSTs a JSON body and reads the answer as Server-Sent Events, on node:http with a keep-alive
 * agent: the one place a worker spends CPU per token, so no fetch, no web streams and no SDK
 * between the socket and the JSON of each event — the bytes go through Node's string decoder,
 * eventsource-parser and JSON.parse, nothing else. Resolves at the end of the stream; rejects with
 * a {@link BackendError} in the vocabulary of map-error.ts (connection refused or reset →
 * backend_unavailable, HTTP status → its type, not done in `timeoutMs` → backend_timeout, the signal
 * → cancelled), the error body's message kept.
 */
export function ssePost(opts: SsePostOptions): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const { url, signal } = opts;
    if (signal.aborted) {
      reject(cancelled(opts.partial()));
      return;
    }
    let settled = false;
    const fail = (err: BackendError) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      clearTimeout(timer);
      req.destroy();
      reject(err);
    };
    const succeed = () => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      clearTimeout(timer);
      resolve();
    };
    const onAbort = () => fail(cancelled(opts.partial()));
    const transport = url.protocol === 'https:' ? https : http;
    const req = transport.request(url, {
      method: 'POST',
      agent: agents[url.protocol as 'http:' | 'https:'],
      headers: {
        ...opts.headers,
        'content-type': 'application/json',
        accept: 'text/event-stream',
        'content-length': Buffer.byteLength(opts.body),
      },
    });
    const timer = setTimeout(
      () =>
        fail(
          new BackendError(
            'backend_timeout',
            `no end of answer within ${opts.timeoutMs} ms`,
            undefined,
            opts.partial(),
          ),
        ),
      opts.timeoutMs,
    );
    timer.unref();
    signal.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err: NodeJS.ErrnoException) =>
      fail(
        new BackendError(
          'backend_unavailable',
          `connection error: ${err.code ?? err.message}`,
          undefined,
          opts.partial(),
        ),
      ),
    );
    req.on('response', (res) => {
      res.setEncoding('utf8');
      const status = res.statusCode ?? 0;
      if (status >= 400) {
        let text = '';
        res.on('data', (chunk: string) => {
          if (text.length < MAX_ERROR_BODY) text += chunk;
        });
        res.on('end', () =>
          fail(new BackendError(typeFromStatus(status), `${status} ${errorMessage(text)}`, status)),
        );
        res.on('error', () => fail(new BackendError(typeFromStatus(status), `${status}`, status)));
        return;
      }
      let done = false;
      const parser = createParser({
        onEvent(ev) {
          if (settled || done) return;
          if (ev.data === '[DONE]') {
            done = true;
            return;
          }
          let data: unknown;
          try {
            data = JSON.parse(ev.data);
          } catch {
            fail(new BackendError('backend_error', `undecodable event: ${ev.data.slice(0, 200)}`));
            return;
          }
          const streamed = (data as { error?: unknown } | null)?.error;
          if (ev.event === 'error' || (streamed !== undefined && streamed !== null)) {
            fail(new BackendError('backend_error', errorMessage(ev.data), undefined, opts.partial()));
            return;
          }
          try {
            opts.onData(data);
          } catch (err) {
            fail(
              err instanceof BackendError
                ? err
                : new BackendError('backend_error', (err as Error).message, undefined, opts.partial()),
            );
          }
        },
      });
      res.on('data', (chunk: string) => parser.feed(chunk));
      res.on('end', succeed);
      // A connection that drops mid-stream ends with `aborted`/`error`, never `end`.
      res.on('error', () =>
        fail(new BackendError('backend_error', 'the backend closed the stream', undefined, opts.partial())),
      );
      res.on('close', () => {
        if (!res.complete)
          fail(new BackendError('backend_error', 'the backend closed the stream', undefined, opts.partial()));
      });
    });
    req.end(opts.body);
  });
}

/** The message of an OpenAI-style error body (`{"error":{"message":…}}`), else the text itself. */
function errorMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    const m =
      typeof body.error === 'string' ? body.error : (body.error?.message ?? body.message ?? undefined);
    if (typeof m === 'string' && m !== '') return m.slice(0, 500);
  } catch {
    // not JSON
  }
  return text.slice(0, 500) || 'no body';
}
