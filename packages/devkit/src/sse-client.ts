import { type Agent, type IncomingHttpHeaders, request } from 'node:http';

export interface SSEOptions {
  headers?: Record<string, string>;
  agent?: Agent;
  /** Called for each `data:` payload as it arrives; return true to disconnect right there. */
  onData?: (data: string, at: number) => boolean | undefined;
  /** Called for each comment line (`: …`) as it arrives; return true to disconnect. */
  onComment?: (comment: string, at: number) => boolean | undefined;
  /** Raw body instead of JSON.stringify(body) (bad-input tests). */
  rawBody?: string;
  /** Destroy the connection after this many ms (a client that gives up). */
  timeoutMs?: number;
}

export interface SSEResult {
  status: number;
  headers: IncomingHttpHeaders;
  /** `data:` payloads in order (SSE) — empty for a non-SSE response. */
  data: string[];
  /** Comment lines (`: …`), without the colon. */
  comments: string[];
  /** performance.now() of each data payload's arrival. */
  times: number[];
  startedAt: number;
  endedAt: number;
  /** The whole body, for non-SSE responses. */
  body: string;
  /** True when we disconnected (onData asked, or timeout). */
  disconnected: boolean;
}

/**
 * A minimal streaming SSE client on node:http (no buffering, per-frame timestamps), used by the
 * tests and the benchmark's load generator alike.
 */
export function postSSE(url: string, body: unknown, opts: SSEOptions = {}): Promise<SSEResult> {
  const payload = opts.rawBody ?? JSON.stringify(body);
  const startedAt = performance.now();
  return new Promise((resolve, reject) => {
    const result: SSEResult = {
      status: 0,
      headers: {},
      data: [],
      comments: [],
      times: [],
      startedAt,
      endedAt: 0,
      body: '',
      disconnected: false,
    };
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      result.endedAt = performance.now();
      resolve(result);
    };
    const req = request(
      url,
      {
        method: 'POST',
        agent: opts.agent,
        headers: {
          'content-type': 'application/json',
          accept: 'text/event-stream',
          'content-length': Buffer.byteLength(payload),
          ...opts.headers,
        },
      },
      (res) => {
        result.status = res.statusCode ?? 0;
        result.headers = res.headers;
        const isSSE = String(res.headers['content-type'] ?? '').startsWith('text/event-stream');
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (chunk: string) => {
          if (!isSSE) {
            result.body += chunk;
            return;
          }
          buf += chunk;
          let idx = buf.indexOf('\n\n');
          while (idx !== -1) {
            const block = buf.slice(0, idx);
            buf = buf.slice(idx + 2);
            const at = performance.now();
            let data: string | undefined;
            for (const line of block.split('\n')) {
              if (line.startsWith('data:'))
                data = (data === undefined ? '' : `${data}\n`) + line.slice(line[5] === ' ' ? 6 : 5);
              else if (line.startsWith(':')) {
                const comment = line.slice(1).trim();
                result.comments.push(comment);
                if (opts.onComment?.(comment, at)) {
                  result.disconnected = true;
                  req.destroy();
                  finish();
                  return;
                }
              }
            }
            if (data !== undefined) {
              result.data.push(data);
              result.times.push(at);
              if (opts.onData?.(data, at)) {
                result.disconnected = true;
                req.destroy();
                finish();
                return;
              }
            }
            idx = buf.indexOf('\n\n');
          }
        });
        res.on('end', finish);
        res.on('close', finish);
        res.on('error', finish);
      },
    );
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          result.disconnected = true;
          req.destroy();
          finish();
        }, opts.timeoutMs)
      : undefined;
    req.on('error', (err) => (finished ? undefined : result.status === 0 ? reject(err) : finish()));
    req.end(payload);
  });
}
