import { connect } from 'node:net';
import { parseMetricsText, sampleValue } from '@llmgw/devkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';

/** Writes `raw` on a fresh connection and reads until the server closes it. */
function rawExchange(url: string, raw: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer within 5 s')));
    socket.write(raw);
  });
}

function parseResponse(text: string) {
  const [head = '', body = ''] = text.split('\r\n\r\n');
  const [statusLine = '', ...headerLines] = head.split('\r\n');
  const headers = Object.fromEntries(
    headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
  );
  return { statusLine, headers, body };
}

describe('requests the HTTP parser refuses get a JSON error, not a bare status line', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ sim: { ttftMs: 1, itlMs: 1 } });
  });
  afterAll(() => stack?.close());
  /** Requests answered before any route, with `status`, as /metrics counts them. */
  const unparsed = async (status: string) => {
    const metrics = parseMetricsText(await (await fetch(`${stack.apiUrl}/metrics`)).text());
    return sampleValue(metrics, 'http_requests_total', { route: 'unparsed', method: 'unknown', status });
  };

  it('20 KB of headers: 431 with a seed-shape JSON body and Connection: close', async () => {
    const big = Array.from({ length: 20 }, (_, i) => `X-Filler-${i}: ${'a'.repeat(1000)}\r\n`).join('');
    const text = await rawExchange(
      stack.apiUrl,
      `POST /chat HTTP/1.1\r\nHost: localhost\r\n${big}Content-Length: 2\r\n\r\n{}`,
    );
    const res = parseResponse(text);
    expect(res.statusLine).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.headers.connection).toBe('close');
    const body = JSON.parse(res.body) as { error: string; message: string; request_id: string };
    expect(body.error).toBe('request_header_fields_too_large');
    expect(body.message).toMatch(/headers exceed/);
    expect(body.request_id).toBe(res.headers['x-request-id']);
    expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.body));
    const line = stack.logs.find('client_error').find((l) => l.request_id === body.request_id);
    expect(line).toMatchObject({ status: 431, parse_error: 'HPE_HEADER_OVERFLOW' });
    expect(await unparsed('431')).toBeGreaterThanOrEqual(1);
  });

  it('a malformed request (HPE_INVALID_*): 400 with a JSON body; counted in http_requests_total', async () => {
    const res = parseResponse(await rawExchange(stack.apiUrl, 'GET /chat HTTP/1.1\r\nBad Header\r\n\r\n'));
    expect(res.statusLine).toBe('HTTP/1.1 400 Bad Request');
    const body = JSON.parse(res.body) as { error: string; message: string };
    expect(body.error).toBe('invalid_request');
    expect(body.message).toMatch(/^malformed HTTP request \(HPE_INVALID_/);
    expect(await unparsed('400')).toBeGreaterThanOrEqual(1);
  });

  it('the server keeps serving ordinary requests', async () => {
    expect((await fetch(`${stack.apiUrl}/health`)).status).toBe(200);
  });
});
