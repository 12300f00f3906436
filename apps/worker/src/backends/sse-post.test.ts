import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BackendError } from './backend.ts';
import { ssePost } from './sse-post.ts';

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

/** A real HTTP server on loopback that answers every request with `answer`. */
async function serve(answer: (res: ServerResponse, body: string) => void): Promise<URL> {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => answer(res, body));
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/chat/completions`);
}

function post(url: URL, onData: (d: unknown) => void = () => {}, timeoutMs = 2000) {
  return ssePost({
    url,
    headers: { authorization: 'Bearer k' },
    body: '{"hello":"wörld"}',
    signal: new AbortController().signal,
    timeoutMs,
    onData,
    partial: () => ({ promptTokens: 0, completionTokens: 7 }),
  });
}

describe('ssePost (the worker’s streaming client)', () => {
  it('sends the JSON body and reassembles events split anywhere, multi-byte characters included', async () => {
    let received = '';
    const url = await serve((res, body) => {
      received = body;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const bytes = Buffer.from('data: {"t":"héllo"}\n\ndata: {"t":"wörld 🌍"}\n\ndata: [DONE]\n\n');
      // One byte at a time, on separate writes: lines and UTF-8 sequences cut in the middle.
      let i = 0;
      const next = () => {
        if (i >= bytes.length) return res.end();
        res.write(bytes.subarray(i, ++i));
        setImmediate(next);
      };
      next();
    });
    const got: unknown[] = [];
    await post(url, (d) => got.push(d));
    expect(received).toBe('{"hello":"wörld"}');
    expect(got).toEqual([{ t: 'héllo' }, { t: 'wörld 🌍' }]);
  });

  it('an HTTP error keeps its status and the message of its OpenAI-style body', async () => {
    const url = await serve((res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"The model `x` does not exist.","type":"NotFoundError"}}');
    });
    const err = (await post(url).catch((e: unknown) => e)) as BackendError;
    expect(err).toBeInstanceOf(BackendError);
    expect(err.type).toBe('backend_bad_request');
    expect(err.status).toBe(404);
    expect(err.message).toBe('404 The model `x` does not exist.');
  });

  it('an error event inside the stream fails it, with what was generated so far', async () => {
    const url = await serve((res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('data: {"t":"a"}\n\ndata: {"error":{"message":"engine died"}}\n\n');
    });
    const got: unknown[] = [];
    const err = (await post(url, (d) => got.push(d)).catch((e: unknown) => e)) as BackendError;
    expect(got).toEqual([{ t: 'a' }]);
    expect(err.type).toBe('backend_error');
    expect(err.message).toBe('engine died');
    expect(err.partialUsage).toEqual({ promptTokens: 0, completionTokens: 7 });
  });

  it('a stream cut before its end is an error, not a short answer', async () => {
    const url = await serve((res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"t":"a"}\n\n');
      setTimeout(() => res.destroy(), 20);
    });
    const err = (await post(url).catch((e: unknown) => e)) as BackendError;
    expect(err).toBeInstanceOf(BackendError);
    expect(err.type).toBe('backend_error');
  });

  it('not done within the timeout → backend_timeout, whether headers came or not', async () => {
    const url = await serve(() => {
      // never answers
    });
    const err = (await post(url, () => {}, 150).catch((e: unknown) => e)) as BackendError;
    expect(err.type).toBe('backend_timeout');
    server?.closeAllConnections();
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    const slow = await serve((res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"t":"a"}\n\n');
      // … and then nothing more.
    });
    const late = (await post(slow, () => {}, 150).catch((e: unknown) => e)) as BackendError;
    expect(late.type).toBe('backend_timeout');
    expect(late.partialUsage).toEqual({ promptTokens: 0, completionTokens: 7 });
    server?.closeAllConnections();
  });
});
