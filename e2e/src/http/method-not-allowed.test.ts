import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';

describe('a wrong method on a route that exists: 405 with Allow, in the path’s error shape', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ sim: { ttftMs: 1, itlMs: 1 } });
  });
  afterAll(() => stack?.close());

  it.each([
    ['GET', '/chat'],
    ['GET', '/v1/chat/completions'],
    ['GET', '/v1/completions'],
    ['GET', '/v1/messages'],
    ['PUT', '/v1/chat/completions'],
  ])('%s %s → 405, Allow: POST', async (method, path) => {
    const res = await stack.fetch(path, { method });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    const body = (await res.json()) as Record<string, unknown>;
    const message = `${method} is not allowed on ${path}`;
    if (path === '/chat') {
      expect(body).toMatchObject({ error: 'method_not_allowed', message });
      expect(body.request_id).toBe(res.headers.get('x-request-id'));
    } else if (path === '/v1/messages') {
      expect(body).toMatchObject({
        type: 'error',
        error: { type: 'invalid_request_error', code: 'method_not_allowed', message },
      });
    } else {
      expect(body).toMatchObject({
        error: { type: 'invalid_request_error', code: 'method_not_allowed', message },
      });
    }
  });

  it.each([
    ['POST', '/v1/models'],
    ['DELETE', '/v1/models/sim-llama-3-8b'],
  ])('%s %s → 405, Allow: GET, HEAD', async (method, path) => {
    const res = await stack.fetch(path, { method });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('method_not_allowed');
  });

  it('the right method still works; an unknown path stays 404', async () => {
    expect((await stack.fetch('/v1/models')).status).toBe(200);
    for (const [method, path] of [
      ['GET', '/v1/nope'],
      ['POST', '/v1/chat/complete'],
      ['GET', '/nope'],
    ] as const) {
      const res = await stack.fetch(path, { method });
      expect(res.status).toBe(404);
      expect(res.headers.get('allow')).toBeNull();
    }
  });
});
