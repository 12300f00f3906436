import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_MODEL } from '@llmgw/config';
import { freePort } from '@llmgw/devkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';

/**
 * Every JSON key the gateway's HTTP surfaces answer is snake_case, as OpenAI's and Anthropic's
 * wire formats are: the api (health, models, the four generation endpoints, errors), the admin
 * API, the worker's metrics server and the simulator. Bodies are walked recursively.
 */

const SNAKE = /^[a-z0-9]+(_[a-z0-9]+)*$/;

/**
 * Where a key is not a field name. Paths: `$` is the body, `.name` a field, `[]` any array
 * element, `.*` any key of a data map.
 */
interface Exceptions {
  /** Objects whose keys are data (model names): their keys are not checked, their values are. */
  dataKeys?: string[];
  /** Values that are someone else's data, not ours to name (request bodies as a client sent them). */
  opaque?: string[];
}

/** Model names key these maps; a model name is whatever the operator configured. */
const HEALTH: Exceptions = { dataKeys: ['$.checks.models'] };
const WORKER_HEALTH: Exceptions = { dataKeys: ['$.breakers'] };
/** The simulator logs request bodies unchanged (unknown fields included), for tests to inspect. */
const SIM_REQUESTS: Exceptions = { opaque: ['$.requests[].body'] };

/*
 * Not walked, on purpose:
 * - Bull Board's JSON API under /admin/queues/api/…: the board's own format (camelCase), read
 *   only by its bundled UI; not ours to rename.
 * - /metrics (Prometheus text), /admin/login (HTML), the simulator's /health (an empty body).
 */

const ADMIN_TOKEN = 'admin-token-for-wire-casing-0123';
/** A second worker's model: a slash and capitals, so a data map keyed by it cannot pass by luck. */
const BROKEN = 'wire-casing/Broken-Model';
const messages = [{ role: 'user', content: 'hi' }];

interface Walked {
  /** Every key path seen, e.g. `$.checks.models.*.workers[].backend.latency_ms`. */
  paths: Set<string>;
  /** `<surface> <path>` of each key that is not snake_case. */
  offenders: Set<string>;
  /** Exception paths that matched something (an unused exception is stale). */
  used: Set<string>;
}

function walk(surface: string, body: unknown, ex: Exceptions, into: Walked): void {
  const visit = (v: unknown, path: string) => {
    if (Array.isArray(v)) {
      for (const x of v) visit(x, `${path}[]`);
      return;
    }
    if (v === null || typeof v !== 'object') return;
    if (ex.opaque?.includes(path)) {
      into.used.add(`${surface} ${path}`);
      return;
    }
    const dataKeys = ex.dataKeys?.includes(path) ?? false;
    for (const [k, x] of Object.entries(v)) {
      if (dataKeys) {
        into.used.add(`${surface} ${path}`);
        visit(x, `${path}.*`);
        continue;
      }
      const at = `${path}.${k}`;
      into.paths.add(`${surface} ${at}`);
      if (!SNAKE.test(k)) into.offenders.add(`${surface} ${at}`);
      visit(x, at);
    }
  };
  visit(body, '$');
}

/** The JSON values of a response: its body, or each `data:` frame of an event stream. */
async function jsonValues(surface: string, res: Response): Promise<unknown[]> {
  const type = res.headers.get('content-type') ?? '';
  const text = await res.text();
  if (type.startsWith('text/event-stream')) {
    return text
      .split('\n')
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).trim())
      .filter((d) => d !== '[DONE]')
      .map((d) => JSON.parse(d) as unknown);
  }
  if (type.startsWith('application/json')) return [JSON.parse(text) as unknown];
  if (text === '') return [];
  throw new Error(`${surface}: ${res.status} ${type}, not JSON: ${text.slice(0, 200)}`);
}

describe('wire casing: every JSON key on every HTTP surface is snake_case', () => {
  let stack: Stack;
  let unhealthyBackend: Server;
  const seen: Walked = { paths: new Set(), offenders: new Set(), used: new Set() };

  /** Fetches, expects `status`, walks the JSON. */
  const hit = async (
    surface: string,
    url: string,
    init: RequestInit & { status: number; ex?: Exceptions },
  ): Promise<void> => {
    const res = await fetch(url, init);
    expect(res.status, surface).toBe(init.status);
    for (const value of await jsonValues(surface, res)) walk(surface, value, init.ex ?? {}, seen);
  };

  beforeAll(async () => {
    const simPort = await freePort();
    stack = await startStack({
      api: { ADMIN_TOKEN },
      sim: { port: simPort, ttftMs: 1, itlMs: 1 },
      workers: [{ LLM_HEALTH_URL: `http://127.0.0.1:${simPort}/health` }],
    });
    // A backend whose health endpoint answers 503: its worker reports the error (with latency and
    // detail) and opens its breaker, so /health shows both shapes.
    unhealthyBackend = createServer((_req, res) => res.writeHead(503).end('down'));
    await new Promise<void>((resolve) => unhealthyBackend.listen(0, '127.0.0.1', resolve));
    const port = (unhealthyBackend.address() as AddressInfo).port;
    await stack.startWorker({
      WORKER_MODELS: BROKEN,
      LLM_HEALTH_URL: `http://127.0.0.1:${port}/health`,
      BREAKER_COOLDOWN_MS: '60000',
    });
  });
  afterAll(async () => {
    await stack?.close();
    await new Promise((resolve) => unhealthyBackend?.close(resolve));
  });

  it('api, admin API, worker and simulator', async () => {
    const api = stack.apiUrl;
    const auth = stack.authHeaders;
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const post = (body: unknown, headers: Record<string, string> = auth) => ({
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

    // api: probes and models.
    await hit('api GET /livez', `${api}/livez`, { status: 200 });
    await hit('api GET /health', `${api}/health`, { status: 200, ex: HEALTH });
    await hit('api GET /ready', `${api}/ready`, { status: 200 });
    await hit('api GET /v1/models', `${api}/v1/models`, { status: 200, headers: auth });
    await hit('api GET /v1/models/{id}', `${api}/v1/models/${DEFAULT_MODEL}`, { status: 200, headers: auth });

    // api: the generation endpoints, whole and streamed, and their errors.
    const chat = { model: DEFAULT_MODEL, messages, max_tokens: 3 };
    await hit('api POST /chat', `${api}/chat`, { status: 200, ...post({ ...chat, stream: false }) });
    await hit('api POST /chat (stream)', `${api}/chat`, { status: 200, ...post(chat) });
    await hit('api POST /chat (error)', `${api}/chat`, { status: 400, ...post({ messages: [] }) });
    await hit('api POST /v1/chat/completions', `${api}/v1/chat/completions`, { status: 200, ...post(chat) });
    await hit('api POST /v1/chat/completions (stream)', `${api}/v1/chat/completions`, {
      status: 200,
      ...post({ ...chat, stream: true, stream_options: { include_usage: true } }),
    });
    await hit('api POST /v1/chat/completions (error)', `${api}/v1/chat/completions`, {
      status: 404,
      ...post({ ...chat, model: 'no-such-model' }),
    });
    const prompt = { model: DEFAULT_MODEL, prompt: 'hi', max_tokens: 3 };
    await hit('api POST /v1/completions', `${api}/v1/completions`, { status: 200, ...post(prompt) });
    await hit('api POST /v1/completions (stream)', `${api}/v1/completions`, {
      status: 200,
      ...post({ ...prompt, stream: true }),
    });
    await hit('api POST /v1/messages', `${api}/v1/messages`, { status: 200, ...post(chat) });
    await hit('api POST /v1/messages (stream)', `${api}/v1/messages`, {
      status: 200,
      ...post({ ...chat, stream: true }),
    });
    await hit('api POST /v1/messages (error)', `${api}/v1/messages`, { status: 400, ...post({}) });
    await hit('api GET /nope (404)', `${api}/nope`, { status: 404 });

    // Admin API.
    await hit('admin GET /admin/keys (401)', `${api}/admin/keys`, { status: 401 });
    await hit('admin POST /admin/keys', `${api}/admin/keys`, {
      status: 201,
      ...post({ user: 'wire-casing-user', tier: 'pro' }, admin),
    });
    await hit('admin GET /admin/keys', `${api}/admin/keys`, { status: 200, headers: admin });
    const { data: keys } = (await (await fetch(`${api}/admin/keys`, { headers: admin })).json()) as {
      data: { id: string }[];
    };
    await hit('admin DELETE /admin/keys/{id}', `${api}/admin/keys/${keys.at(-1)!.id}`, {
      status: 200,
      method: 'DELETE',
      headers: admin,
    });
    await hit('admin GET /admin/queues/stats', `${api}/admin/queues/stats`, { status: 200, headers: admin });
    for (const action of ['pause', 'resume'])
      await hit(
        `admin POST /admin/models/{model}/${action}`,
        `${api}/admin/models/${DEFAULT_MODEL}/${action}`,
        {
          status: 200,
          method: 'POST',
          headers: admin,
        },
      );

    // Workers' metrics servers: the healthy one, and the one whose backend fails its probe.
    for (const [i, w] of stack.workers.entries())
      await hit(`worker ${i} GET /health`, `http://127.0.0.1:${w.metricsPort}/health`, {
        status: 200,
        ex: WORKER_HEALTH,
      });

    // Simulator.
    const sim = stack.sim!.url;
    await hit('sim GET /sim/stats', `${sim}/sim/stats`, { status: 200 });
    await hit('sim GET /sim/requests', `${sim}/sim/requests`, { status: 200, ex: SIM_REQUESTS });
    await hit('sim GET /health', `${sim}/health`, { status: 200 });
    await hit('sim GET /version', `${sim}/version`, { status: 200 });
    await hit('sim GET /v1/models', `${sim}/v1/models`, { status: 200 });
    await hit('sim GET /nope (404)', `${sim}/nope`, { status: 404 });
    await hit('sim POST /v1/chat/completions (fault)', `${sim}/v1/chat/completions`, {
      status: 500,
      ...post(chat, { 'x-sim-error': 'server_error' }),
    });
    await hit('sim POST /v1/messages (fault)', `${sim}/v1/messages`, {
      status: 500,
      ...post(chat, { 'x-sim-error': 'server_error' }),
    });
    await hit('sim POST /sim/requests/reset', `${sim}/sim/requests/reset`, { status: 200, method: 'POST' });
    await hit('sim POST /sim/stats/reset', `${sim}/sim/stats/reset`, { status: 200, method: 'POST' });

    expect([...seen.offenders]).toEqual([]);

    // Not vacuous: the fields this rule renamed were on the wire, under their new names.
    expect([...seen.paths]).toEqual(
      expect.arrayContaining([
        'api GET /health $.checks.models.*.workers[].backend.latency_ms',
        'api GET /health $.checks.models.*.workers[].backend.checked_at',
        'api GET /health $.checks.models.*.workers[].breaker.since',
        'worker 0 GET /health $.backend.latency_ms',
        'worker 1 GET /health $.backend.checked_at',
        'admin POST /admin/keys $.user_id',
        'admin GET /admin/keys $.data[].created_at',
        'sim GET /sim/stats $.peak_running',
      ]),
    );
    // And every exception is still needed.
    expect([...seen.used].sort()).toEqual([
      'api GET /health $.checks.models',
      'sim GET /sim/requests $.requests[].body',
      'worker 1 GET /health $.breakers',
    ]);
  });
});
