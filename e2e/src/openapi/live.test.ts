import { createHash, randomUUID } from 'node:crypto';
import { ERROR_STATUS } from '@llmgw/api';
import { type CheckedAnswer, OpenApiChecker, type OpenApiDocument } from '@llmgw/devkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, type StackApiKey } from '../stack/common.ts';
import { type Stack, startStack } from '../stack/in-process.ts';

/**
 * Live answers against the OpenAPI document the api serves (issue 23 §3): every documented
 * operation and every status of the error table (apps/api/src/errors/codes.ts), made by real
 * requests to a running stack (simulator, worker, api, Redis), each checked for its status,
 * content type and body against the document, streams frame by frame. The checker itself is
 * shown to catch a drift in packages/devkit/src/openapi-check.test.ts and
 * apps/api/src/openapi/document.test.ts.
 *
 * Statuses of the table not made here, and why:
 * - 403 `forbidden`: only the admin surface (ADMIN_READONLY), which is not in the public document;
 * - 408 `request_timeout`: Node's requestTimeout (300 s), not configurable, answered before any route;
 * - 499 `client_closed_request`: nobody reads it (the client has left; it is what the logs record);
 * - 500 `internal_error`: no public request makes one (a bug, or api and worker of other releases).
 * Their bodies are the same renderers' as the others': document.test.ts checks every code's body
 * in every wire format against the document.
 */

const MODEL = 'sim-llama-3-8b';
const REASONER = 'sim-reasoner-1';
/** Served through an Anthropic backend (a worker with LLM_PROVIDER=anthropic): thinking signatures. */
const CLAUDE = 'sim-claude-reasoner';
const user = (content: string) => [{ role: 'user', content }];
const weather = {
  type: 'function',
  function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
};
const TIERS = {
  free: { requests_per_min: 10, tokens_per_day: 50_000, priority: 3 },
  enterprise: { requests_per_min: 1_000_000, tokens_per_day: 1_000_000_000, priority: 1 },
  one_a_minute: { requests_per_min: 1, tokens_per_day: 1_000_000, priority: 2 },
  few_tokens: { requests_per_min: 1000, tokens_per_day: 20, priority: 2 },
  one_at_a_time: { requests_per_min: 1000, tokens_per_day: 1_000_000, priority: 2, max_concurrent: 1 },
};

/** The statuses of the error table, from the api's own codes. */
const ERROR_TABLE_STATUSES = [...new Set(Object.values(ERROR_STATUS))].sort();
const NOT_MADE_HERE = [403, 408, 499, 500];

let stack: Stack;
let checker: OpenApiChecker;
/** Errors answered before any operation (405, 431), checked against their family's component. */
const familyChecked: { status: number; component: string }[] = [];

interface Sent {
  status: number;
  body: string;
  json: <T = Record<string, unknown>>() => T;
  /** The error code in any family's body: `/chat`'s `error`, `/v1`'s `error.code`. */
  code: string | undefined;
  /** OpenAI's and Anthropic's `error.type`. */
  errorType: string | undefined;
  headers: Headers;
  checked: CheckedAnswer;
}

interface SendOptions {
  body?: unknown;
  /** Headers besides the key's; `auth: false` sends no key. */
  headers?: Record<string, string>;
  auth?: false | StackApiKey;
  base?: string;
}

/** One real request, its answer checked against the document. */
async function send(method: string, path: string, opts: SendOptions = {}): Promise<Sent> {
  const res = await fetch(`${opts.base ?? stack.apiUrl}${path}`, {
    method,
    headers: {
      ...(opts.auth === false ? {} : (opts.auth?.headers ?? stack.authHeaders)),
      ...(opts.body !== undefined && { 'content-type': 'application/json' }),
      ...opts.headers,
    },
    ...(opts.body !== undefined && {
      body: typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body),
    }),
  });
  const { body, ...checked } = await checker.checkResponse(method, new URL(path, 'http://x').pathname, res);
  const json = <T>(): T => JSON.parse(body) as T;
  const error = res.headers.get('content-type')?.startsWith('application/json')
    ? json<{ error?: string | { code?: string; type?: string } }>().error
    : undefined;
  return {
    status: res.status,
    body,
    json,
    code: typeof error === 'string' ? error : error?.code,
    errorType: typeof error === 'object' ? error.type : undefined,
    headers: res.headers,
    checked,
  };
}

/** An answer no operation documents (405, 431): its body against the family's error component. */
async function checkFamilyError(res: Response, component: 'SeedError' | 'OpenAIError' | 'AnthropicError') {
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = await res.text();
  checker.validateBody(`${res.status} ${component}`, checker.component(component), 'application/json', body);
  familyChecked.push({ status: res.status, component });
  return JSON.parse(body);
}

const framesOf = (body: string) =>
  body
    .split('\n')
    .filter((l) => l.startsWith('data: '))
    .map((l) => l.slice(6));

beforeAll(async () => {
  stack = await startStack({
    sim: { ttftMs: 2, itlMs: 2, outputTokens: 400, models: [MODEL, REASONER, CLAUDE] },
    api: { TIERS_JSON: JSON.stringify(TIERS), JOB_LOG_MAX_EVENTS: '16' },
    workers: [{ WORKER_MODELS: `${MODEL},${REASONER}` }],
  });
  await stack.startWorker({ WORKER_MODELS: CLAUDE, LLM_PROVIDER: 'anthropic', LLM_BASE_URL: stack.sim!.url });
  // Public: no key.
  const res = await fetch(`${stack.apiUrl}/openapi.json`);
  expect(res.status).toBe(200);
  checker = new OpenApiChecker((await res.json()) as OpenApiDocument);
});
afterAll(() => stack?.close());

describe('every endpoint answers as the document says', () => {
  it('health probes, the document and its page, without a key', async () => {
    expect((await send('GET', '/livez', { auth: false })).status).toBe(200);
    expect([200, 503]).toContain((await send('GET', '/health', { auth: false })).status);
    expect((await send('GET', '/ready', { auth: false })).status).toBe(200);
    expect((await send('GET', '/openapi.json', { auth: false })).status).toBe(200);
    expect((await send('GET', '/docs', { auth: false })).status).toBe(200);
  });

  it('POST /chat: a JSON answer, a stream, a tool call and reasoning as frames, 202 async', async () => {
    const body = { messages: user('hello'), max_tokens: 6 };
    expect((await send('POST', '/chat', { body: { ...body, stream: false } })).status).toBe(200);
    const streamed = await send('POST', '/chat', { body });
    expect(streamed.checked.contentType).toBe('text/event-stream');
    expect(framesOf(streamed.body).at(-1)).toBe('[DONE]');
    const tool = await send('POST', '/chat', {
      body: { ...body, tools: [weather], tool_choice: 'required' },
    });
    expect(tool.body).toContain('"tool_call"');
    const thinking = await send('POST', '/chat', { body: { ...body, model: REASONER } });
    expect(thinking.body).toContain('"reasoning"');
    const accepted = await send('POST', '/chat', {
      body: { ...body, stream: false },
      headers: { prefer: 'respond-async' },
    });
    expect(accepted.status).toBe(202);
  });

  it('POST /v1/chat/completions: body, chunks with usage, tool calls, reasoning, 202 async', async () => {
    const body = { model: MODEL, messages: user('hello'), max_tokens: 6 };
    const whole = await send('POST', '/v1/chat/completions', { body });
    expect(whole.json<{ object: string }>().object).toBe('chat.completion');
    const streamed = await send('POST', '/v1/chat/completions', {
      body: { ...body, stream: true, stream_options: { include_usage: true } },
    });
    expect(streamed.checked.frames).toBeGreaterThan(3);
    const tool = await send('POST', '/v1/chat/completions', {
      body: { ...body, stream: true, tools: [weather], tool_choice: 'required' },
    });
    expect(tool.body).toContain('"tool_calls"');
    const toolWhole = await send('POST', '/v1/chat/completions', {
      body: { ...body, tools: [weather], tool_choice: 'required' },
    });
    expect(
      toolWhole.json<{ choices: { message: { tool_calls: unknown[] } }[] }>().choices[0]!.message.tool_calls,
    ).toHaveLength(1);
    const thinking = await send('POST', '/v1/chat/completions', {
      body: { ...body, model: REASONER, stream: true },
    });
    expect(thinking.body).toContain('"reasoning_content"');
    const logprobs = await send('POST', '/v1/chat/completions', {
      body: { ...body, logprobs: true, top_logprobs: 2 },
    });
    expect(logprobs.json<{ choices: { logprobs: unknown }[] }>().choices[0]!.logprobs).not.toBeNull();
    expect(
      (await send('POST', '/v1/chat/completions', { body, headers: { prefer: 'respond-async' } })).status,
    ).toBe(202);
  });

  it('POST /v1/completions: body, chunks, logprobs', async () => {
    const body = { model: MODEL, prompt: 'Once upon a time', max_tokens: 6 };
    expect((await send('POST', '/v1/completions', { body })).json<{ object: string }>().object).toBe(
      'text_completion',
    );
    const streamed = await send('POST', '/v1/completions', {
      body: { ...body, stream: true, stream_options: { include_usage: true } },
    });
    expect(streamed.checked.frames).toBeGreaterThan(2);
    const logprobs = await send('POST', '/v1/completions', { body: { ...body, logprobs: 2, stream: true } });
    expect(logprobs.body).toContain('"token_logprobs"');
  });

  it('POST /v1/messages (x-api-key): a message, events with tool use and thinking; count_tokens', async () => {
    const anthropic = {
      auth: false as const,
      headers: { 'x-api-key': stack.apiKey, 'anthropic-version': '2023-06-01' },
    };
    const body = { model: MODEL, max_tokens: 6, messages: user('hello') };
    expect((await send('POST', '/v1/messages', { ...anthropic, body })).json<{ type: string }>().type).toBe(
      'message',
    );
    const streamed = await send('POST', '/v1/messages', { ...anthropic, body: { ...body, stream: true } });
    expect(streamed.body).toContain('event: message_stop');
    const tools = [{ name: 'get_weather', input_schema: { type: 'object' } }];
    const tool = await send('POST', '/v1/messages', {
      ...anthropic,
      body: { ...body, stream: true, tools, tool_choice: { type: 'any' } },
    });
    expect(tool.body).toContain('"input_json_delta"');
    const toolWhole = await send('POST', '/v1/messages', {
      ...anthropic,
      body: { ...body, tools, tool_choice: { type: 'any' } },
    });
    expect(toolWhole.json<{ content: { type: string }[] }>().content.some((b) => b.type === 'tool_use')).toBe(
      true,
    );
    const thinking = await send('POST', '/v1/messages', {
      ...anthropic,
      body: { ...body, model: REASONER, stream: true, max_tokens: 20 },
    });
    expect(thinking.body).toContain('"thinking_delta"');
    // Over an Anthropic backend, thinking blocks carry their signatures (signature_delta).
    const extended = { type: 'enabled', budget_tokens: 16 };
    const signed = await send('POST', '/v1/messages', {
      ...anthropic,
      body: { ...body, model: CLAUDE, stream: true, max_tokens: 40, thinking: extended },
    });
    expect(signed.body).toContain('"signature_delta"');
    const signedWhole = await send('POST', '/v1/messages', {
      ...anthropic,
      body: { ...body, model: CLAUDE, max_tokens: 40, thinking: extended },
    });
    const blocks = signedWhole.json<{ content: { type: string; signature?: string }[] }>().content;
    expect(blocks.find((b) => b.type === 'thinking')?.signature).toMatch(/\w/);
    const count = await send('POST', '/v1/messages/count_tokens', {
      ...anthropic,
      body: { messages: user('hello') },
    });
    expect(count.json<{ input_tokens: number }>().input_tokens).toBeGreaterThan(0);
  });

  it('GET /v1/models, /v1/models/{id}', async () => {
    const list = await send('GET', '/v1/models');
    expect(list.json<{ data: { id: string }[] }>().data.map((m) => m.id)).toContain(MODEL);
    expect((await send('GET', `/v1/models/${MODEL}`)).status).toBe(200);
  });

  it('/v1/jobs: list, status, events in each wire format, cancel', async () => {
    const bodies: [string, unknown][] = [
      ['/chat', { messages: user('job'), max_tokens: 5 }],
      ['/v1/chat/completions', { messages: user('job'), max_tokens: 5, stream: true }],
      ['/v1/completions', { prompt: 'job', max_tokens: 5, stream: true }],
      ['/v1/messages', { messages: user('job'), max_tokens: 5, stream: true }],
    ];
    for (const [path, body] of bodies) {
      const first = await send('POST', path, { body });
      const jobId = first.headers.get('x-job-id')!;
      const status = await send('GET', `/v1/jobs/${jobId}`);
      expect(status.json<{ status: string }>().status).toBe('completed');
      const replay = await send('GET', `/v1/jobs/${jobId}/events`);
      expect(replay.checked.frames).toBe(first.checked.frames);
      expect((await send('GET', `/v1/jobs/${jobId}/events?after=1`)).checked.frames).toBe(
        first.checked.frames - 2,
      );
    }
    const list = await send('GET', '/v1/jobs?limit=3');
    expect(list.json<{ data: unknown[] }>().data).toHaveLength(3);
    const queued = await send('POST', '/chat', {
      body: { messages: user('cancel me'), max_tokens: 300, stream: false },
      headers: { prefer: 'respond-async' },
    });
    const { id } = queued.json<{ id: string }>();
    const cancelled = await send('POST', `/v1/jobs/${id}/cancel`);
    expect(cancelled.json<{ status: string }>().status).toBe('cancelled');
    expect((await send('GET', `/v1/jobs/${id}`)).json<{ status: string }>().status).toBe('cancelled');
  });

  it('GET /v1/usage: the caller’s jobs and tokens as JSON, and as CSV', async () => {
    // The jobs above are counted in the background as they end: wait for some.
    await expect
      .poll(
        async () => (await send('GET', '/v1/usage')).json<{ total: { requests: number } }>().total.requests,
      )
      .toBeGreaterThan(0);
    const byModel = await send('GET', '/v1/usage?group_by=model,outcome');
    expect(byModel.json<{ data: { model: string }[] }>().data.map((r) => r.model)).toContain(MODEL);
    const csv = await send('GET', '/v1/usage?group_by=day,key', { headers: { accept: 'text/csv' } });
    expect(csv.checked.contentType).toBe('text/csv');
    expect(csv.body.split('\r\n')[0]).toBe('day,key,requests,prompt_tokens,completion_tokens,total_tokens');
  });
});

describe('/v1/files', () => {
  it('upload (multipart), list, retrieve, content, delete', async () => {
    const line = `${JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/chat/completions', body: { messages: user('hi') } })}\n`;
    const uploaded = await uploadFile('batch', line);
    expect(uploaded.status).toBe(200);
    const id = uploaded.json().id as string;
    const list = await send('GET', '/v1/files?limit=5&order=desc');
    expect(list.json<{ data: { id: string }[] }>().data.map((f) => f.id)).toContain(id);
    expect((await send('GET', `/v1/files/${id}`)).json<{ bytes: number }>().bytes).toBe(line.length);
    expect((await send('GET', `/v1/files/${id}/content`)).body).toBe(line);
    expect((await send('DELETE', `/v1/files/${id}`)).json<{ deleted: boolean }>().deleted).toBe(true);
  });
});

describe('/v1/batches', () => {
  it('create, retrieve, list, cancel; a failed batch; 400, 404 and 409', async () => {
    const line = `${JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/chat/completions', body: { messages: user('hi'), max_tokens: 2 } })}\n`;
    const fileId = (await uploadFile('batch', line)).json().id as string;
    const create = (body: unknown) => send('POST', '/v1/batches', { body });
    const created = await create({
      input_file_id: fileId,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    expect(created.status).toBe(200);
    const id = created.json<{ id: string }>().id;
    expect((await send('GET', `/v1/batches/${id}`)).json<{ id: string }>().id).toBe(id);
    expect((await send('GET', '/v1/batches?limit=2')).json<{ data: { id: string }[] }>().data[0]?.id).toBe(
      id,
    );
    const cancelled = await send('POST', `/v1/batches/${id}/cancel`);
    expect(cancelled.status).toBe(200);
    const bad = (await uploadFile('batch', 'not json\n')).json().id as string;
    const failed = await create({
      input_file_id: bad,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    expect(failed.json<{ status: string }>().status).toBe('failed');
    const failedId = failed.json<{ id: string }>().id;
    expect((await send('POST', `/v1/batches/${failedId}/cancel`)).status).toBe(409);
    expect(
      (await create({ input_file_id: fileId, endpoint: '/v1/embeddings', completion_window: '24h' })).status,
    ).toBe(400);
    expect((await send('GET', '/v1/batches?limit=0')).status).toBe(400);
    expect((await send('GET', '/v1/batches/batch_00000000000000000000000000000')).status).toBe(404);
    expect((await send('POST', '/v1/batches/batch_00000000000000000000000000000/cancel')).status).toBe(404);
  });
});

/** A `multipart/form-data` upload to /v1/files, its answer checked against the document. */
async function uploadFile(purpose: string, content: string) {
  const form = new FormData();
  form.append('purpose', purpose);
  form.append('file', new Blob([content]), 'input.jsonl');
  const res = await fetch(`${stack.apiUrl}/v1/files`, {
    method: 'POST',
    headers: stack.authHeaders,
    body: form,
  });
  const { body, ...checked } = await checker.checkResponse('POST', '/v1/files', res);
  return { status: res.status, json: () => JSON.parse(body) as Record<string, unknown>, checked };
}

describe('every status of the error table answers in its documented shape', () => {
  it('400: not JSON, and a wrong field, in each family', async () => {
    expect((await send('POST', '/chat', { body: '' })).code).toBe('invalid_json');
    expect((await send('POST', '/chat', { body: { messages: [] } })).json<{ param: string }>().param).toBe(
      'messages',
    );
    const openai = await send('POST', '/v1/chat/completions', {
      body: { messages: user('x'), max_tokens: 0 },
    });
    expect(openai.code).toBe('invalid_request');
    expect((await send('POST', '/v1/completions', { body: '{' })).status).toBe(400);
    expect((await send('POST', '/v1/messages', { body: { messages: user('x') } })).errorType).toBe(
      'invalid_request_error',
    );
    expect((await send('POST', '/v1/messages/count_tokens', { body: '[]' })).status).toBe(400);
    expect((await send('GET', '/v1/jobs?limit=0')).status).toBe(400);
    const usage = await send('GET', '/v1/usage?start=2026-13-01');
    expect([usage.status, usage.code, usage.json<{ error: { param: string } }>().error.param]).toEqual([
      400,
      'invalid_request',
      'start',
    ]);
    expect((await send('GET', `/v1/jobs/${randomUUID()}/events?after=x`)).status).toBe(400);
    expect((await uploadFile('fine-tune', '{}\n')).status).toBe(400);
    expect((await send('GET', '/v1/files?order=up')).code).toBe('invalid_request');
  });

  it('401: no key, or a wrong one, in each family', async () => {
    const none = { auth: false as const };
    expect((await send('POST', '/chat', { ...none, body: {} })).code).toBe('unauthorized');
    expect((await send('GET', '/v1/models', none)).errorType).toBe('authentication_error');
    expect((await send('GET', '/v1/jobs', none)).status).toBe(401);
    const wrong = { auth: false as const, headers: { 'x-api-key': 'sk-not-a-key' } };
    expect((await send('POST', '/v1/messages', { ...wrong, body: {} })).errorType).toBe(
      'authentication_error',
    );
    expect((await send('POST', '/v1/messages/count_tokens', { ...wrong, body: {} })).status).toBe(401);
  });

  it('404: an unknown model or job, in each family', async () => {
    expect((await send('POST', '/chat', { body: { model: 'nope', messages: user('x') } })).code).toBe(
      'model_not_found',
    );
    expect((await send('GET', '/v1/models/nope/really')).code).toBe('model_not_found');
    expect(
      (await send('POST', '/v1/messages', { body: { model: 'nope', max_tokens: 5, messages: user('x') } }))
        .errorType,
    ).toBe('not_found_error');
    for (const path of ['', '/events']) {
      expect((await send('GET', `/v1/jobs/${randomUUID()}${path}`)).code).toBe('not_found');
    }
    expect((await send('POST', `/v1/jobs/${randomUUID()}/cancel`)).status).toBe(404);
    for (const path of ['', '/content']) {
      expect((await send('GET', `/v1/files/file-00000000000000000000000000000${path}`)).code).toBe(
        'not_found',
      );
    }
    expect((await send('DELETE', '/v1/files/file-00000000000000000000000000000')).status).toBe(404);
  });

  it('405: another method, in the path family shape, with Allow', async () => {
    const cases = [
      ['/chat', 'SeedError'],
      ['/v1/chat/completions', 'OpenAIError'],
      ['/v1/messages', 'AnthropicError'],
    ] as const;
    for (const [path, component] of cases) {
      const res = await fetch(`${stack.apiUrl}${path}`, { headers: stack.authHeaders });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
      await checkFamilyError(res, component);
    }
  });

  it('409: a retry whose Idempotency-Key is held by a request still being admitted', async () => {
    const body = { messages: user('held'), max_tokens: 5, stream: false };
    const key = `held-${randomUUID()}`;
    // What a request that claimed the key and never got its job submitted leaves: the claim.
    const digest = createHash('sha256')
      .update(`POST /chat\n${JSON.stringify(sortKeys(body))}`)
      .digest('hex');
    const sha = createHash('sha256').update(key).digest('hex');
    await stack.redis.set(stack.keys.idempotency('test-user', sha), `${randomUUID()} ${digest}`, 'EX', 60);
    const res = await send('POST', '/chat', { body, headers: { 'idempotency-key': key } });
    expect(res.status).toBe(409);
    expect(res.code).toBe('idempotency_key_in_use');
  }, 15_000);

  it('410: replaying a job whose log lost its start (JOB_LOG_MAX_EVENTS)', async () => {
    const long = await send('POST', '/v1/chat/completions', {
      body: { messages: user('a long one'), max_tokens: 200, stream: true },
    });
    const replay = await send('GET', `/v1/jobs/${long.headers.get('x-job-id')}/events`);
    expect(replay.status).toBe(410);
    expect(replay.code).toBe('job_log_trimmed');
  });

  it('413: a body over BODY_LIMIT_BYTES, in each family', async () => {
    const big = JSON.stringify({ messages: user('x'.repeat(1_100_000)) });
    expect((await send('POST', '/chat', { body: big })).code).toBe('payload_too_large');
    expect((await send('POST', '/v1/chat/completions', { body: big })).status).toBe(413);
    expect((await send('POST', '/v1/messages', { body: big })).errorType).toBe('request_too_large');
  });

  it('422: an Idempotency-Key sent again with another body', async () => {
    const key = { 'idempotency-key': `reused-${randomUUID()}` };
    const first = await send('POST', '/v1/chat/completions', {
      body: { messages: user('one'), max_tokens: 3 },
      headers: key,
    });
    expect(first.status).toBe(200);
    const second = await send('POST', '/v1/chat/completions', {
      body: { messages: user('two'), max_tokens: 3 },
      headers: key,
    });
    expect(second.status).toBe(422);
    expect(second.code).toBe('idempotency_key_reused');
  });

  it('429: requests per minute, daily tokens, jobs in flight', async () => {
    const rpm = await createApiKey(stack.redis, stack.keys, 'rpm-user', 'one_a_minute');
    const body = { messages: user('x'), max_tokens: 3, stream: false };
    expect((await send('POST', '/chat', { body, auth: rpm })).status).toBe(200);
    const limited = await send('POST', '/chat', { body, auth: rpm });
    expect(limited.status).toBe(429);
    expect(limited.code).toBe('rate_limit_exceeded');

    const tokens = await createApiKey(stack.redis, stack.keys, 'quota-user', 'few_tokens');
    const quota = await send('POST', '/v1/chat/completions', {
      body: { ...body, max_tokens: 100 },
      auth: tokens,
    });
    expect(quota.status).toBe(429);
    expect(quota.code).toBe('insufficient_quota');
    const anthropicQuota = await send('POST', '/v1/messages', {
      body: { messages: user('x'), max_tokens: 100 },
      auth: tokens,
    });
    expect(anthropicQuota.errorType).toBe('rate_limit_error');

    const one = await createApiKey(stack.redis, stack.keys, 'busy-user', 'one_at_a_time');
    const holding = fetch(`${stack.apiUrl}/chat`, {
      method: 'POST',
      headers: one.headers,
      body: JSON.stringify({ messages: user('hold'), max_tokens: 200 }),
    });
    const held = await holding; // headers: admitted and streaming
    const busy = await send('POST', '/chat', { body, auth: one });
    expect(busy.status).toBe(429);
    expect(busy.code).toBe('concurrency_limit_exceeded');
    await held.text();
  });

  it('431: headers over 16 KB, answered by the HTTP server in the seed shape', async () => {
    const res = await fetch(`${stack.apiUrl}/chat`, {
      method: 'POST',
      headers: { ...stack.authHeaders, 'x-padding': 'a'.repeat(20_000) },
      body: '{}',
    });
    expect(res.status).toBe(431);
    expect((await checkFamilyError(res, 'SeedError')).error).toBe('request_header_fields_too_large');
  });

  it('503: a retry of a cancelled job; an api replica shutting down', async () => {
    const body = { messages: user('cancel then retry'), max_tokens: 300, stream: false };
    const key = { 'idempotency-key': `cancelled-${randomUUID()}` };
    const accepted = await send('POST', '/chat', { body, headers: { ...key, prefer: 'respond-async' } });
    expect(accepted.status).toBe(202);
    await send('POST', `/v1/jobs/${accepted.headers.get('x-job-id')}/cancel`);
    const retry = await send('POST', '/chat', { body, headers: key });
    expect(retry.status).toBe(503);
    expect(retry.code).toBe('cancelled');

    // A replica that is stopping refuses new work (503 shutting_down) while its open stream ends.
    const replica = await stack.startApi();
    const open = await fetch(`${replica.url}/chat`, {
      method: 'POST',
      headers: stack.authHeaders,
      body: JSON.stringify({ messages: user('keep me open'), max_tokens: 300 }),
    });
    const closing = replica.close(10_000);
    for (const path of ['/chat', '/v1/chat/completions', '/v1/messages']) {
      const refused = await send('POST', path, {
        base: replica.url,
        body: { messages: user('too late'), max_tokens: 3 },
      });
      expect(refused.status).toBe(503);
      expect(refused.code).toBe('shutting_down');
    }
    await open.text();
    await closing;
  });
});

describe('a failing backend: 502 and 504, and error frames inside a stream', () => {
  let failing: Stack | undefined;
  afterAll(() => failing?.close());

  it('502 backend_bad_request: a JSON error, or the error frame of each stream format', async () => {
    failing = await startStack({
      sim: { ttftMs: 1, itlMs: 1, failureRate: 1, failureTypes: ['bad_request'] },
    });
    const base = failing.apiUrl;
    const auth = { key: failing.apiKey, userId: 'test-user', headers: failing.authHeaders };
    const body = { messages: user('x'), max_tokens: 3 };
    const whole = await send('POST', '/chat', { base, auth, body: { ...body, stream: false } });
    expect(whole.status).toBe(502);
    expect(whole.code).toBe('backend_bad_request');
    expect((await send('POST', '/v1/chat/completions', { base, auth, body })).status).toBe(502);
    expect((await send('POST', '/v1/messages', { base, auth, body })).errorType).toBe('api_error');
    for (const path of ['/chat', '/v1/chat/completions', '/v1/completions', '/v1/messages']) {
      const streamBody =
        path === '/v1/completions' ? { prompt: 'x', max_tokens: 3, stream: true } : { ...body, stream: true };
      const streamed = await send('POST', path, { base, auth, body: streamBody });
      expect(streamed.status).toBe(200);
      expect(streamed.body).toContain('backend_bad_request');
    }
  });

  it('504 backend_timeout: no first token within LLM_FIRST_TOKEN_TIMEOUT_MS', async () => {
    await failing?.close();
    failing = await startStack({
      sim: { ttftMs: 1, itlMs: 1, failureRate: 1, failureTypes: ['timeout'] },
      api: { BACKEND_MAX_ATTEMPTS: '1' },
      workers: [{ LLM_FIRST_TOKEN_TIMEOUT_MS: '300' }],
    });
    const auth = { key: failing.apiKey, userId: 'test-user', headers: failing.authHeaders };
    const res = await send('POST', '/v1/chat/completions', {
      base: failing.apiUrl,
      auth,
      body: { messages: user('x'), max_tokens: 3 },
    });
    expect(res.status).toBe(504);
    expect(res.code).toBe('backend_timeout');
  });
});

describe('coverage', () => {
  it('every documented operation answered 2xx, and every status of the error table was checked', () => {
    const documented = Object.entries(checker.doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops ?? {}).map((m) => `${m} ${path}`),
    );
    const succeeded = new Set(
      checker.checked.filter((c) => c.status < 300).map((c) => `${c.method} ${c.path}`),
    );
    expect(documented.filter((op) => !succeeded.has(op))).toEqual([]);
    const streamed = new Set(checker.checked.filter((c) => c.frames > 0).map((c) => c.path));
    expect([...streamed].sort()).toEqual([
      '/chat',
      '/v1/chat/completions',
      '/v1/completions',
      '/v1/jobs/{id}/events',
      '/v1/messages',
    ]);
    const statuses = new Set([
      ...checker.checked.map((c) => c.status),
      ...familyChecked.map((c) => c.status),
    ]);
    const missing = ERROR_TABLE_STATUSES.filter((s) => !statuses.has(s) && !NOT_MADE_HERE.includes(s));
    expect(missing).toEqual([]);
  });
});

/** The api's canonical JSON for the Idempotency-Key digest: object keys sorted at every depth. */
function sortKeys(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(sortKeys);
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
  );
}
