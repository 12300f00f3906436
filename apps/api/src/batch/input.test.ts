import { describe, expect, it } from 'vitest';
import { CompletionRequest } from '../routes/completions.ts';
import { ChatCompletionRequest } from '../routes/openai-chat.ts';
import { type BatchInputError, parseBatchLine, validateBatchInput } from './input.ts';

const chat = (id: string, body: Record<string, unknown> = {}) =>
  JSON.stringify({
    custom_id: id,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'sim-llama-3-8b', messages: [{ role: 'user', content: `hello ${id}` }], ...body },
  });
const completion = (id: string, body: Record<string, unknown> = {}) =>
  JSON.stringify({
    custom_id: id,
    method: 'POST',
    url: '/v1/completions',
    body: { model: 'sim-qwen', prompt: 'Once upon', max_tokens: 8, ...body },
  });

const check = (lines: string[], opts: Partial<Parameters<typeof validateBatchInput>[1]> = {}) =>
  validateBatchInput(lines, { maxRequests: 50_000, ...opts });
/** Errors without their messages (asserted separately where they matter). */
const codes = (errors: BatchInputError[]) => errors.map(({ message: _, ...e }) => e);

describe('validateBatchInput', () => {
  it('takes a valid file of both endpoints, empty lines and CRLF-stripped lines included', () => {
    const summary = check([chat('a'), '', completion('b'), '   ', chat('c', { model: 'sim-reasoner-1' })]);
    expect(summary).toEqual({
      requests: 3,
      errors: [],
      errorCount: 0,
      models: ['sim-llama-3-8b', 'sim-qwen', 'sim-reasoner-1'],
    });
  });

  it('finds each kind of bad line, with OpenAI’s error shape and the line number', () => {
    const lines = [
      chat('ok'),
      '{"custom_id": "x", "method": "POST",', // 2: not JSON
      '[1, 2]', // 3: not an object
      JSON.stringify({ method: 'POST', url: '/v1/chat/completions', body: {} }), // 4: no custom_id
      JSON.stringify({ custom_id: 'get', method: 'GET', url: '/v1/chat/completions', body: {} }), // 5
      JSON.stringify({ custom_id: 'emb', method: 'POST', url: '/v1/embeddings', body: {} }), // 6
      chat('ok'), // 7: duplicate of line 1
      chat('bad-role', { messages: [{ role: 'wizard', content: 'hi' }] }), // 8
      chat('n', { n: 2 }), // 9: the route's own rule (refineSampling)
      completion('empty', { prompt: '' }), // 10: the route's empty-prompt rule
      JSON.stringify({ custom_id: 42, method: 'POST', url: '/v1/completions', body: {} }), // 11
      JSON.stringify({ custom_id: 'nobody', method: 'POST', url: '/v1/completions', body: 'hi' }), // 12
      JSON.stringify({ custom_id: 'nomethod', url: '/v1/completions', body: {} }), // 13
    ];
    const summary = check(lines);
    expect(summary.requests).toBe(13);
    expect(summary.errorCount).toBe(12);
    expect(codes(summary.errors)).toEqual([
      { code: 'invalid_json_line', param: null, line: 2 },
      { code: 'invalid_json_line', param: null, line: 3 },
      { code: 'missing_required_parameter', param: 'custom_id', line: 4 },
      { code: 'invalid_request', param: 'method', line: 5 },
      { code: 'invalid_url', param: 'url', line: 6 },
      { code: 'duplicate_custom_id', param: 'custom_id', line: 7 },
      { code: 'invalid_request', param: 'body.messages.0.role', line: 8 },
      { code: 'invalid_request', param: 'body.n', line: 9 },
      { code: 'invalid_request', param: 'body.prompt', line: 10 },
      { code: 'invalid_request', param: 'custom_id', line: 11 },
      { code: 'invalid_request', param: 'body', line: 12 },
      { code: 'missing_required_parameter', param: 'method', line: 13 },
    ]);
    const message = (line: number) => summary.errors.find((e) => e.line === line)!.message;
    expect(message(2)).toMatch(/^This line is not parseable as valid JSON/);
    expect(message(7)).toBe(
      'The custom_id "ok" is a duplicate of line 1\'s: custom_id must be unique in the file.',
    );
    expect(message(10)).toBe('body.prompt: must not be empty');
  });

  it('refuses a body exactly when the route’s schema does', () => {
    const bodies = [
      { messages: [{ role: 'user', content: 'hi' }] },
      { messages: [] },
      { messages: [{ role: 'user', content: 'hi' }], max_tokens: 5000 },
      { messages: [{ role: 'user', content: 'hi' }], top_logprobs: 2 },
      { messages: [{ role: 'user', content: 'hi' }], stream_options: { include_usage: true } },
      { messages: [{ role: 'user', content: 'hi' }], unknown_field: 1 },
    ];
    for (const body of bodies) {
      const line = JSON.stringify({ custom_id: 'x', method: 'POST', url: '/v1/chat/completions', body });
      expect({ body, ok: 'request' in parseBatchLine(line, 1) }).toEqual({
        body,
        ok: ChatCompletionRequest.safeParse(body).success,
      });
    }
    for (const body of [{ prompt: 'x' }, { prompt: ['a', 'b'] }, { prompt: 'x', best_of: 2 }, {}]) {
      const line = JSON.stringify({ custom_id: 'x', method: 'POST', url: '/v1/completions', body });
      expect({ body, ok: 'request' in parseBatchLine(line, 1) }).toEqual({
        body,
        ok: CompletionRequest.safeParse(body).success,
      });
    }
  });

  it('gives the parsed request, the route’s defaults filled in', () => {
    const parsed = parseBatchLine(chat('a'), 1);
    expect(parsed).toEqual({
      request: {
        custom_id: 'a',
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'sim-llama-3-8b', messages: [{ role: 'user', content: 'hello a' }], stream: false },
      },
    });
  });

  it('holds every line to the batch’s endpoint when given one', () => {
    const summary = check([chat('a'), completion('b')], { endpoint: '/v1/chat/completions' });
    expect(codes(summary.errors)).toEqual([{ code: 'url_mismatch', param: 'url', line: 2 }]);
  });

  it('an empty file, too many requests, a line over the size limit, a line nested too deep', () => {
    expect(codes(check([]).errors)).toEqual([{ code: 'empty_file', param: null, line: null }]);
    expect(codes(check(['', ' ']).errors)).toEqual([{ code: 'empty_file', param: null, line: null }]);
    const many = check([chat('a'), chat('b'), chat('c'), chat('d')], { maxRequests: 2 });
    expect(many.requests).toBe(4);
    expect(codes(many.errors)).toEqual([{ code: 'too_many_tasks', param: null, line: 3 }]);
    const big = chat('big', { messages: [{ role: 'user', content: '€'.repeat(400) }] });
    expect(codes(check([big], { maxLineBytes: 1000 }).errors)).toEqual([
      { code: 'invalid_request', param: null, line: 1 },
    ]);
    expect(check([big], { maxLineBytes: 2000 }).errors).toEqual([]);
    const deep = chat('deep', {
      tools: [{ type: 'function', function: { name: 'f', parameters: nest(80) } }],
    });
    expect(codes(check([deep]).errors)).toEqual([{ code: 'invalid_json_line', param: null, line: 1 }]);
  });

  it('a conversation of empty messages is refused, as /v1/chat/completions refuses it', () => {
    const empty = chat('e', { messages: [{ role: 'user', content: '  ' }] });
    expect(codes(check([empty]).errors)).toEqual([
      { code: 'invalid_request', param: 'body.messages', line: 1 },
    ]);
    const toolCall = chat('t', {
      messages: [
        { role: 'user', content: '' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }],
        },
      ],
    });
    expect(check([toolCall]).errors).toEqual([]);
  });

  it('lists at most maxErrors errors and counts them all', () => {
    const lines = Array.from({ length: 250 }, () => 'not json');
    const summary = check(lines, { maxErrors: 10 });
    expect(summary.errors).toHaveLength(10);
    expect(summary.errorCount).toBe(250);
    expect(summary.errors.at(-1)!.line).toBe(10);
    expect(check(lines).errors).toHaveLength(100);
  });

  it('a line refused for its body still claims its custom_id: a later one with it is a duplicate', () => {
    const summary = check([chat('a', { messages: [] }), chat('a')]);
    expect(codes(summary.errors)).toEqual([
      { code: 'invalid_request', param: 'body.messages', line: 1 },
      { code: 'duplicate_custom_id', param: 'custom_id', line: 2 },
    ]);
  });
});

function nest(depth: number): Record<string, unknown> {
  let v: Record<string, unknown> = { type: 'string' };
  for (let i = 0; i < depth; i++) v = { type: 'object', properties: { x: v } };
  return v;
}
