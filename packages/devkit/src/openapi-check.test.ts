import { describe, expect, it } from 'vitest';
import { OpenApiChecker, OpenApiMismatch, parseSse } from './openapi-check.ts';

/** A small document of the shapes the gateway's has: a JSON answer, a stream, a path parameter. */
const doc = () => ({
  openapi: '3.1.0',
  info: { title: 't', version: '1' },
  paths: {
    '/chat': {
      post: {
        responses: {
          '200': {
            description: 'ok',
            content: {
              'application/json': { schema: { $ref: '#/components/schemas/Answer' } },
              'text/event-stream': { schema: { $ref: '#/components/schemas/Frame' } },
            },
          },
          '400': {
            description: 'bad',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
          },
        },
      },
    },
    '/v1/models/{id}': {
      get: {
        responses: {
          '200': { description: 'ok', content: { 'application/json': { schema: { type: 'object' } } } },
        },
      },
    },
    '/events': {
      get: {
        responses: {
          '200': {
            description: 'ok',
            content: {
              'text/event-stream': {
                schema: {
                  oneOf: [
                    { type: 'object', properties: { type: { const: 'ping' } }, required: ['type'] },
                    { type: 'object', properties: { type: { const: 'message_stop' } }, required: ['type'] },
                  ],
                },
              },
            },
          },
        },
      },
    },
  },
  components: {
    schemas: {
      Answer: {
        type: 'object',
        properties: { content: { type: 'string' } },
        required: ['content'],
        additionalProperties: false,
      },
      Frame: {
        anyOf: [
          { type: 'object', properties: { token: { type: 'string' } }, required: ['token'] },
          { const: '[DONE]' },
        ],
      },
      Error: { type: 'object', properties: { error: { type: 'string' } }, required: ['error'] },
    },
  },
});

const json = (status: number, body: unknown) => ({
  status,
  contentType: 'application/json; charset=UTF-8',
  body: JSON.stringify(body),
});
const sse = (...frames: string[]) => ({
  status: 200,
  contentType: 'text/event-stream',
  body: frames.map((f) => `id: 0\n${f}\n\n`).join(''),
});

describe('OpenApiChecker', () => {
  it('passes answers that match: JSON, every SSE frame, a parameter that takes the rest of the path', () => {
    const c = new OpenApiChecker(doc());
    expect(c.check('POST', '/chat', json(200, { content: 'hi' })).frames).toBe(0);
    expect(
      c.check('POST', '/chat', sse('data: {"token":"a"}', ': queued position=1', 'data: [DONE]')).frames,
    ).toBe(2);
    expect(c.check('GET', '/v1/models/meta-llama/Llama-3', json(200, {})).path).toBe('/v1/models/{id}');
    expect(c.check('GET', '/events', sse('event: ping\ndata: {"type":"ping"}')).frames).toBe(1);
    expect(c.checked).toHaveLength(4);
  });

  it('names each drift: a field of the wrong type, an extra field, a bad frame, a status or type not documented', () => {
    const c = new OpenApiChecker(doc());
    const fails = (f: () => unknown, msg: RegExp) => expect(f).toThrow(msg);
    fails(() => c.check('POST', '/chat', json(200, { content: 5 })), /must be string/);
    fails(() => c.check('POST', '/chat', json(200, { content: 'x', extra: 1 })), /additional properties/);
    fails(() => c.check('POST', '/chat', sse('data: {"token":"a"}', 'data: {"tokens":"b"}')), /frame 1/);
    fails(() => c.check('POST', '/chat', sse('data: DONE')), /frame 0/);
    fails(() => c.check('POST', '/chat', json(503, { error: 'x' })), /status 503 is not documented/);
    fails(
      () => c.check('POST', '/chat', { ...json(400, { error: 'x' }), contentType: 'text/plain' }),
      /content type/,
    );
    fails(() => c.check('GET', '/chat', json(200, {})), /no get operation/);
    fails(() => c.check('GET', '/nowhere', json(200, {})), /no such path/);
    fails(() => c.check('GET', '/events', sse('event: ping\ndata: {"type":"message_stop"}')), /event 'ping'/);
    fails(() => c.check('POST', '/chat', { ...json(200, {}), body: 'not json' }), /not JSON/);
    expect(() => c.check('POST', '/chat', json(200, { content: 5 }))).toThrow(OpenApiMismatch);
  });

  it('parses SSE as a client does: event and data lines, comments skipped, multi-line data joined', () => {
    expect(parseSse('id: 1\nevent: a\ndata: {"x":1}\n\n: comment\n\ndata: l1\ndata: l2\n\n')).toEqual([
      { event: 'a', data: '{"x":1}' },
      { data: 'l1\nl2' },
    ]);
  });
});
