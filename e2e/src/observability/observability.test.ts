import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiKeyStore } from '@llmgw/api';
import { DEFAULT_MODEL } from '@llmgw/config';
import {
  freePort,
  type MetricFamily,
  parseMetricsText,
  postSSE,
  REPO_ROOT,
  sampleValue,
} from '@llmgw/devkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';
import { seedTokens } from '../support/direct.ts';

type Process = 'api' | 'worker' | 'sim';

interface DocumentedMetric {
  name: string;
  process: Process;
  type: string;
  labels: string[];
}

/** The metrics table of docs/observability.md: `| metric | process | type | labels | meaning |`. */
function readmeMetrics(): DocumentedMetric[] {
  const doc = readFileSync(join(REPO_ROOT, 'docs/observability.md'), 'utf8');
  const section = doc.split(/^## /m).find((s) => s.startsWith('Metrics\n'));
  if (!section) throw new Error('docs/observability.md has no "## Metrics" section');
  const rows: DocumentedMetric[] = [];
  for (const line of section.split('\n')) {
    const cells = line
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
    const name = /^`([a-zA-Z_:][a-zA-Z0-9_:]*)`$/.exec(cells[0] ?? '');
    if (cells.length !== 5 || !name || !['api', 'worker', 'sim'].includes(cells[1]!)) continue;
    rows.push({
      name: name[1]!,
      process: cells[1] as Process,
      type: cells[2]!,
      labels: cells[3] === '—' ? [] : cells[3]!.split(',').map((l) => l.trim().replaceAll('`', '')),
    });
  }
  return rows;
}

/** prom-client's default process metrics: documented as a group, not one by one. */
const isProcessDefault = (name: string) => /^(process_|nodejs_)/.test(name);

const scrape = async (url: string) => {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return parseMetricsText(await res.text());
};

const messages = [{ role: 'user' as const, content: 'Count to eight, slowly.' }];
const BROKEN = 'broken-model';

describe('metrics: the docs/observability.md table against /metrics of the api, the workers and the simulator', () => {
  let stack: Stack;
  let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
  const texts: Record<Process, Map<string, MetricFamily>[]> = { api: [], worker: [], sim: [] };

  beforeAll(async () => {
    // Free tier: one request a minute, so a second request is a 429 at once.
    const tiers = {
      free: { requests_per_min: 1, tokens_per_day: 100_000, priority: 3 },
      enterprise: { requests_per_min: 1000, tokens_per_day: 10_000_000, priority: 1 },
    };
    // LLM_HEALTH_URL given: the worker does not derive it from LLM_BASE_URL yet (see README's
    // configuration table), and without a probe URL llm_backend_up reads 0.
    const simPort = await freePort();
    stack = await startStack({
      // The backend also streams a field the gateway does not relay: llm_backend_dropped_total.
      sim: { port: simPort, ttftMs: 5, itlMs: 10, extraDeltaField: 'audio' },
      api: { TIERS_JSON: JSON.stringify(tiers), BACKEND_MAX_ATTEMPTS: '1' },
      workers: [{ LLM_HEALTH_URL: `http://127.0.0.1:${simPort}/health` }],
    });
    // A second worker, for another model, whose backend does not exist: its requests fail.
    // (Health probe pointed at a live endpoint and a breaker that never opens: the failure
    // must reach the client at once, for the error counters; failover.test.ts covers the rest.)
    await stack.startWorker({
      WORKER_MODELS: BROKEN,
      LLM_BASE_URL: `http://127.0.0.1:${await freePort()}/v1`,
      LLM_HEALTH_URL: `http://127.0.0.1:${simPort}/health`,
      BREAKER_FAILURES: '1000',
    });

    // 1. One streamed request (with its usage chunk, to know the exact token counts).
    const ok = await stack.chat(
      {
        model: DEFAULT_MODEL,
        messages,
        max_tokens: 8,
        stream: true,
        stream_options: { include_usage: true },
      },
      {},
      '/v1/chat/completions',
    );
    expect(ok.status).toBe(200);
    for (const d of ok.data) if (d !== '[DONE]') usage ??= (JSON.parse(d) as { usage?: typeof usage }).usage;
    expect(usage?.completion_tokens).toBe(8);
    await vi.waitFor(() =>
      expect(stack.logs.find('backend_fields_dropped')[0]).toMatchObject({ fields: ['delta.audio'] }),
    );

    // 2. A generation that fails at the backend.
    const failed = await stack.chat({ model: BROKEN, messages, max_tokens: 4 });
    expect(failed.data.at(-1)).toContain('backend_unavailable');

    // 3. A free-tier user: its one request of the minute names a model nobody serves (404,
    //    refused at admission), its next one is rate-limited (429).
    const { key } = await new ApiKeyStore(stack.redis, stack.keys).create('limited-user', 'free');
    const asLimited = (model: string) =>
      stack.fetch('/chat', {
        method: 'POST',
        headers: { authorization: `Bearer ${key}` },
        body: JSON.stringify({ model, messages, max_tokens: 1, stream: false }),
      });
    expect((await asLimited('no-such-model')).status).toBe(404);
    expect((await asLimited(DEFAULT_MODEL)).status).toBe(429);

    // 4. A fault injected straight at the simulator, for its fault counter.
    const fault = await fetch(`${stack.sim!.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-sim-error': 'server_error' },
      body: JSON.stringify({ model: DEFAULT_MODEL, messages, max_tokens: 1 }),
    });
    expect(fault.status).toBe(500);
    // 5. A client that leaves the simulator mid-stream, for its abort counter.
    const left = await postSSE(
      `${stack.sim!.url}/v1/chat/completions`,
      { model: DEFAULT_MODEL, messages, max_tokens: 50, stream: true },
      { onData: () => true },
    );
    expect(left.disconnected).toBe(true);

    // Workers count a job when it has ended, a moment after its last event reached the client.
    await vi.waitFor(
      async () => {
        texts.api = [await scrape(`${stack.apiUrl}/metrics`)];
        texts.worker = await Promise.all(
          stack.workers.map((w) => scrape(`http://127.0.0.1:${w.metricsPort}/metrics`)),
        );
        texts.sim = [await scrape(`${stack.sim!.url}/metrics`)];
        expect(
          sampleValue(texts.worker[1]!, 'llm_worker_jobs_total', { model: BROKEN, outcome: 'failed' }),
        ).toBe(1);
        expect(
          sampleValue(texts.worker[0]!, 'llm_worker_jobs_total', {
            model: DEFAULT_MODEL,
            outcome: 'completed',
          }),
        ).toBe(1);
        expect(sampleValue(texts.api[0]!, 'llm_active_streams')).toBe(0);
        expect(sampleValue(texts.sim[0]!, 'sim_requests_aborted_total', { model_name: DEFAULT_MODEL })).toBe(
          1,
        );
      },
      { timeout: 5000, interval: 100 },
    );
  });
  afterAll(() => stack?.close());

  const documented = readmeMetrics();

  it('docs/observability.md lists the metrics of all three processes', () => {
    const byProcess = (p: Process) => documented.filter((m) => m.process === p).length;
    expect(byProcess('api')).toBeGreaterThanOrEqual(12);
    expect(byProcess('worker')).toBeGreaterThanOrEqual(7);
    expect(byProcess('sim')).toBeGreaterThanOrEqual(8);
  });

  it.each(documented.map((m) => [m.name, m] as const))('%s exists with its type and labels', (_, m) => {
    const families = texts[m.process].map((t) => t.get(m.name)).filter((f) => f !== undefined);
    expect(families.length, `${m.name}: not in the ${m.process}'s /metrics`).toBeGreaterThan(0);
    for (const f of families) expect(f.type).toBe(m.type);
    const samples = families.flatMap((f) => f.samples);
    expect(samples.length, `${m.name}: no sample after the requests`).toBeGreaterThan(0);
    for (const s of samples) {
      const labels = Object.keys(s.labels)
        .filter((l) => l !== 'le')
        .sort();
      expect(labels, `${s.name}${JSON.stringify(s.labels)}`).toEqual([...m.labels].sort());
    }
  });

  it('every metric a process exports is in docs/observability.md (prom-client process defaults aside)', () => {
    for (const p of ['api', 'worker', 'sim'] as const) {
      const exported = new Set(texts[p].flatMap((t) => [...t.keys()]).filter((n) => !isProcessDefault(n)));
      const listed = documented.filter((m) => m.process === p).map((m) => m.name);
      expect([...exported].sort(), `${p} /metrics vs docs/observability.md`).toEqual([...listed].sort());
    }
  });

  it('counts what the requests did', () => {
    const api = texts.api[0]!;
    const [worker, broken] = texts.worker as [Map<string, MetricFamily>, Map<string, MetricFamily>];
    const sim = texts.sim[0]!;
    const model = { model: DEFAULT_MODEL };
    expect(sampleValue(api, 'llm_tokens_total', { ...model, type: 'output' })).toBe(8);
    expect(sampleValue(api, 'llm_tokens_total', { ...model, type: 'input' })).toBe(usage!.prompt_tokens);
    expect(sampleValue(api, 'llm_latency_seconds_count', model)).toBe(1);
    expect(sampleValue(api, 'llm_e2e_latency_seconds_count', model)).toBe(1);
    expect(sampleValue(api, 'llm_queue_wait_seconds_count', model)).toBe(1);
    expect(sampleValue(api, 'llm_inter_token_latency_seconds_count', model)).toBeGreaterThan(0);
    expect(sampleValue(api, 'llm_errors_total', { model: BROKEN, error_type: 'backend_unavailable' })).toBe(
      1,
    );
    expect(
      sampleValue(api, 'llm_admission_rejections_total', {
        // A model no worker registered is labelled `unknown` (bounded labels, metrics.ts).
        model: 'unknown',
        reason: 'model_not_found',
        tier: 'free',
      }),
    ).toBe(1);
    expect(sampleValue(api, 'llm_rate_limit_rejections_total', { tier: 'free', limit: 'requests' })).toBe(1);
    expect(sampleValue(api, 'llm_queue_depth', model)).toBe(0);
    expect(
      sampleValue(api, 'http_requests_total', {
        route: '/v1/chat/completions',
        method: 'POST',
        status: '200',
      }),
    ).toBe(1);

    expect(sampleValue(worker, 'llm_worker_slots', model)).toBe(8);
    expect(sampleValue(worker, 'llm_worker_busy_slots', model)).toBe(0);
    expect(sampleValue(worker, 'llm_backend_ttft_seconds_count', model)).toBe(1);
    expect(sampleValue(worker, 'llm_backend_up')).toBe(1);
    // Its health endpoint answers while its API does not (an erroring vLLM does that too).
    expect(sampleValue(broken, 'llm_backend_up')).toBe(1);
    expect(
      sampleValue(broken, 'llm_backend_errors_total', { model: BROKEN, error_type: 'backend_unavailable' }),
    ).toBe(1);

    const modelName = { model_name: DEFAULT_MODEL };
    // 8, plus whatever the aborted stream generated before its client left.
    expect(sampleValue(sim, 'vllm:generation_tokens_total', modelName)).toBeGreaterThanOrEqual(8);
    expect(sampleValue(sim, 'vllm:request_success_total', { ...modelName, finished_reason: 'length' })).toBe(
      1,
    );
    expect(sampleValue(sim, 'sim_faults_injected_total', { type: 'server_error' })).toBe(1);
  });
});

/** `name;desc="…";dur=1.5, …` → name → dur (and whether it has a description). */
function serverTiming(
  header: string | string[] | null | undefined,
): Map<string, { dur: number; desc?: string }> {
  const out = new Map<string, { dur: number; desc?: string }>();
  for (const part of String(header ?? '').split(/,\s*/)) {
    const [name, ...params] = part.split(';');
    const dur = params.find((p) => p.startsWith('dur='));
    const desc = params.find((p) => p.startsWith('desc='));
    out.set(name!, { dur: Number(dur?.slice(4)), ...(desc && { desc: desc.slice(5) }) });
  }
  return out;
}

describe('logs and timing headers', () => {
  let stack: Stack;
  // Every answer as long as max_tokens: line counts can be compared across lengths.
  const sim = { ttftMs: 5, itlMs: 1, outputTokens: 1000 };
  beforeAll(async () => {
    stack = await startStack({ sim });
  });
  afterAll(() => stack?.close());

  /** Sends one /chat request under a request id of ours and waits for its request_completed line. */
  async function traced(s: Stack, body: Record<string, unknown>) {
    const requestId = `obs-${randomUUID()}`;
    const res = await s.chat({ messages, ...body }, { headers: { 'x-request-id': requestId } });
    await vi.waitFor(
      () => expect(s.logs.find('request_completed').some((l) => l.request_id === requestId)).toBe(true),
      { timeout: 5000, interval: 20 },
    );
    return { res, requestId, lines: s.logs.lines.filter((l) => l.request_id === requestId) };
  }

  it('one request: every line carries its request id, across the api and the worker', async () => {
    const { res, requestId, lines } = await traced(stack, { max_tokens: 8 });
    expect(res.status).toBe(200);
    expect(res.headers['x-request-id']).toBe(requestId);

    const events = lines.map((l) => `${l.service}:${l.msg}`);
    expect(events[0]).toBe('api:request_started');
    // The api's last line; the worker's own last lines may land just before or after it.
    expect(events.filter((e) => e.startsWith('api:')).at(-1)).toBe('api:request_completed');
    expect(events).toEqual(expect.arrayContaining(['worker:job_started', 'worker:job_completed']));

    expect(lines.find((l) => l.msg === 'request_started')).toMatchObject({ method: 'POST', path: '/chat' });
    const completed = lines.find((l) => l.msg === 'request_completed')!;
    expect(completed).toMatchObject({
      method: 'POST',
      route: '/chat',
      status: 200,
      user_id: 'test-user',
      model: DEFAULT_MODEL,
      tokens: { completion: 8 },
    });
    expect(completed.latency_ms).toEqual(expect.any(Number));
    expect((completed.tokens as { prompt: number }).prompt).toBeGreaterThan(0);
    const jobStarted = lines.find((l) => l.msg === 'job_started')!;
    expect(jobStarted).toMatchObject({ model: DEFAULT_MODEL, job_id: expect.any(String) });
    expect(jobStarted).not.toHaveProperty('messages');
    expect(lines.find((l) => l.msg === 'job_completed')).toMatchObject({
      job_id: jobStarted.job_id,
      completion_tokens: 8,
      finish_reason: 'length',
    });
  });

  it('every line has service and instance; no key and no prompt ever reach a log', async () => {
    const prompt = `my distinctive prompt ${randomUUID()}`;
    const ok = await traced(stack, { messages: [{ role: 'user', content: prompt }], max_tokens: 4 });
    expect(ok.res.status).toBe(200);
    // The key in the other header, and a wrong key, are not logged either.
    const viaHeader = await stack.fetch('/chat', {
      method: 'POST',
      headers: { authorization: '', 'x-api-key': stack.apiKey },
      body: JSON.stringify({ messages: [{ role: 'user', content: prompt }], max_tokens: 2, stream: false }),
    });
    expect(viaHeader.status).toBe(200);
    const wrongKey = `llmgw_${randomUUID().replaceAll('-', '')}`;
    const refused = await stack.fetch('/chat', {
      method: 'POST',
      headers: { authorization: `Bearer ${wrongKey}` },
      body: JSON.stringify({ messages: [{ role: 'user', content: prompt }] }),
    });
    expect(refused.status).toBe(401);

    for (const line of stack.logs.lines) {
      expect(line.service, JSON.stringify(line)).toEqual(expect.any(String));
      expect(line.instance, JSON.stringify(line)).toEqual(expect.any(String));
    }
    const all = JSON.stringify(stack.logs.lines);
    expect(all).toContain(ok.requestId);
    expect(all).not.toContain(stack.apiKey);
    expect(all).not.toContain(wrongKey);
    expect(all).not.toContain(prompt);
  });

  it('LOG_PROMPTS=1 on the worker puts the prompt in job_started (so the check above can see one)', async () => {
    const s = await startStack({ sim, workers: [{ LOG_PROMPTS: '1' }] });
    try {
      const prompt = `my distinctive prompt ${randomUUID()}`;
      const { res, lines } = await traced(s, {
        messages: [{ role: 'user', content: prompt }],
        max_tokens: 2,
      });
      expect(res.status).toBe(200);
      expect(lines.find((l) => l.msg === 'job_started')?.messages).toEqual([
        { role: 'user', content: prompt },
      ]);
      const all = JSON.stringify(s.logs.lines);
      expect(all).toContain(prompt);
      expect(all).not.toContain(s.apiKey);
    } finally {
      await s.close();
    }
  });

  it('no per-token lines: 5 and 50 tokens write the same number of lines', async () => {
    const count = async (maxTokens: number) => {
      const before = stack.logs.lines.length;
      const { res, lines } = await traced(stack, { max_tokens: maxTokens });
      expect(seedTokens(res.data)).toHaveLength(maxTokens);
      return { request: lines.length, all: stack.logs.lines.length - before };
    };
    const five = await count(5);
    const fifty = await count(50);
    expect(five.request).toBeGreaterThanOrEqual(4);
    expect(fifty).toEqual(five);
  });

  it.each(['/chat', '/v1/chat/completions'])(
    '%s streaming: Server-Timing admission and the overhead',
    async (path) => {
      const res = await stack.chat({ model: DEFAULT_MODEL, messages, max_tokens: 3, stream: true }, {}, path);
      expect(res.status).toBe(200);
      const timing = serverTiming(res.headers['server-timing']);
      expect([...timing.keys()]).toEqual(['admission']);
      const admission = timing.get('admission')!.dur;
      expect(admission).toBeGreaterThanOrEqual(0);
      expect(Number(res.headers['x-gateway-overhead-ms'])).toBeCloseTo(admission, 5);
    },
  );

  it.each(['/chat', '/v1/chat/completions'])(
    '%s complete response: queue, ttft, backend, total; overhead = total − queue − backend',
    async (path) => {
      const res = await stack.fetch(path, {
        method: 'POST',
        body: JSON.stringify({ model: DEFAULT_MODEL, messages, max_tokens: 3, stream: false }),
      });
      expect(res.status).toBe(200);
      const timing = serverTiming(res.headers.get('server-timing'));
      expect([...timing.keys()]).toEqual(['admission', 'queue', 'ttft', 'backend', 'total']);
      const dur = (name: string) => timing.get(name)!.dur;
      for (const name of timing.keys()) expect(dur(name), name).toBeGreaterThanOrEqual(0);
      expect(timing.get('ttft')!.desc).toBe('"backend time to first token"');
      expect(dur('ttft')).toBeGreaterThan(0);
      expect(dur('ttft')).toBeLessThanOrEqual(dur('backend'));
      expect(dur('total')).toBeGreaterThanOrEqual(dur('backend'));
      const overhead = Number(res.headers.get('x-gateway-overhead-ms'));
      // Each value is rounded to 0.1 ms on its own.
      expect(
        Math.abs(overhead - Math.max(0, dur('total') - dur('queue') - dur('backend'))),
      ).toBeLessThanOrEqual(0.25);
      await res.text();
    },
  );
});
