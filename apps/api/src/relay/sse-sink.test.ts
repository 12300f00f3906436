import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ServerType, serve } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppEnv } from '../context.ts';

/** Real servers on loopback; the sink is imported only after one has replaced the global Response. */
describe('sseResponse under @hono/node-server', () => {
  const servers: ServerType[] = [];
  let url = '';
  const aborted: string[] = [];

  beforeAll(async () => {
    servers.push(serve({ fetch: new Hono().fetch, port: 0, hostname: '127.0.0.1' }));
    expect(globalThis.Response.name).toBe('Response$1');
    const { sseResponse } = await import('./sse-sink.ts');
    const app = new Hono<AppEnv>();
    app.use(async (c, next) => {
      c.set('log', { error: () => {} } as never);
      c.header('X-Request-ID', 'req-1');
      await next();
    });
    app.get('/frames', (c) =>
      sseResponse(
        c,
        async (sink) => {
          await sink.write('data: 1\n\n');
          await sink.write('data: 2\n\n');
        },
        () => aborted.push('frames'),
      ),
    );
    app.get('/forever', (c) =>
      sseResponse(
        c,
        async (sink) => {
          await sink.write('data: first\n\n');
          while (!sink.aborted) await new Promise((r) => setTimeout(r, 10));
        },
        () => aborted.push('forever'),
      ),
    );
    await new Promise<void>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve());
      servers.push(s);
    });
    url = `http://127.0.0.1:${(servers[1]!.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    for (const s of servers) s.close();
  });

  it('writes the frames and the headers set before it, then ends the response', async () => {
    const res = await fetch(`${url}/frames`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    expect(res.headers.get('x-accel-buffering')).toBe('no');
    expect(res.headers.get('x-request-id')).toBe('req-1');
    expect(await res.text()).toBe('data: 1\n\ndata: 2\n\n');
    expect(aborted).toEqual([]);
  });

  it('a client that leaves mid-stream: onAbort once, and the writer sees aborted', async () => {
    await new Promise<void>((resolve) => {
      const req = request(`${url}/forever`, (res) => {
        res.once('data', () => req.destroy());
        res.on('error', () => {});
        res.on('close', () => resolve());
      });
      req.on('error', () => {});
      req.end();
    });
    const deadline = Date.now() + 5000;
    while (!aborted.includes('forever') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(aborted).toEqual(['forever']);
  });
});
