import { randomBytes } from 'node:crypto';
import { DEFAULT_MODEL } from '@llmgw/config';
import { type OtlpReceiver, type ReceivedSpan, SPAN_KIND, startOtlpReceiver, until } from '@llmgw/devkit';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readFrames } from '../durable/sse-frames.ts';
import { type SpawnedStack, startSpawnedStack } from '../stack/spawned.ts';

const MAX_TOKENS = 12;

/**
 * OpenTelemetry on real processes: an api and a worker export to a real OTLP/HTTP receiver in
 * this process; one request must come back as one trace holding both processes' spans.
 */
describe('tracing: one request, one trace across the api and the worker', () => {
  let receiver: OtlpReceiver;
  let stack: SpawnedStack;
  let headers: Record<string, string>;
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    stack = await startSpawnedStack({
      redisUrl: inject('redisUrl'),
      sim: { SIM_TTFT_MS: '20', SIM_ITL_MS: '2' },
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '100',
      },
    });
    ({ headers } = await stack.createKey('pro'));
  });
  afterAll(async () => {
    await stack?.close();
    await receiver?.close();
  });

  const chat = (extra: Record<string, string> = {}) =>
    readFrames(`${stack.apiUrls[0]}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json', ...extra },
      body: JSON.stringify({
        model: DEFAULT_MODEL,
        messages: [{ role: 'user', content: 'Trace me' }],
        max_tokens: MAX_TOKENS,
        temperature: 0.5,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
  const traceOf = async (traceId: string, names: string[]) => {
    const has = () => {
      const spans = receiver.spans().filter((s) => s.traceId === traceId);
      return names.every((n) => spans.some((s) => s.name.startsWith(n)));
    };
    await until(has, 15_000);
    return receiver.spans().filter((s) => s.traceId === traceId);
  };
  const one = (spans: ReceivedSpan[], name: string) => {
    const found = spans.filter((s) => s.name.startsWith(name));
    expect(
      found.map((s) => s.name),
      name,
    ).toHaveLength(1);
    return found[0]!;
  };

  it("continues the client's traceparent: HTTP → admission, enqueue → job → backend call, relay, with GenAI attributes", async () => {
    const traceId = randomBytes(16).toString('hex');
    const clientSpan = randomBytes(8).toString('hex');
    const res = await chat({ traceparent: `00-${traceId}-${clientSpan}-01` });
    expect(res.status).toBe(200);
    expect(res.frames.at(-1)!.data).toBe('[DONE]');
    const usage = (JSON.parse(res.frames.at(-2)!.data) as { usage: { prompt_tokens: number } }).usage;

    const spans = await traceOf(traceId, ['POST', 'admission', 'add', 'process', 'chat', 'relay']);
    const http = one(spans, 'POST');
    expect(http.name).toBe('POST /v1/chat/completions');
    expect(http.kind).toBe(SPAN_KIND.server);
    expect(http.parentSpanId).toBe(clientSpan);
    expect(http.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.route': '/v1/chat/completions',
      'http.response.status_code': 200,
      'llmgw.request_id': res.headers.get('x-request-id'),
      'llmgw.tier': 'pro',
    });

    const admission = one(spans, 'admission');
    const add = one(spans, 'add');
    const relay = one(spans, 'relay');
    for (const s of [admission, add, relay]) {
      expect(s.service, s.name).toBe('llmgw-api');
      expect(s.parentSpanId, s.name).toBe(http.spanId);
    }
    expect(add.kind).toBe(SPAN_KIND.producer);
    expect(admission.attributes['llmgw.job_id']).toBe(res.headers.get('x-job-id'));

    // The worker's spans: BullMQ's job span continues the enqueue's context carried in the job.
    const job = one(spans, 'process');
    expect(job.service).toBe('llmgw-worker');
    expect(job.kind).toBe(SPAN_KIND.consumer);
    expect(job.parentSpanId).toBe(add.spanId);
    const generation = one(spans, 'chat');
    expect(generation.service).toBe('llmgw-worker');
    expect(generation.name).toBe(`chat ${DEFAULT_MODEL}`);
    expect(generation.kind).toBe(SPAN_KIND.client);
    expect(generation.parentSpanId).toBe(job.spanId);
    expect(generation.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': DEFAULT_MODEL,
      'gen_ai.request.max_tokens': MAX_TOKENS,
      'gen_ai.request.temperature': 0.5,
      'gen_ai.usage.input_tokens': usage.prompt_tokens,
      'gen_ai.usage.output_tokens': MAX_TOKENS,
      'gen_ai.response.finish_reasons': ['length'],
      'server.address': '127.0.0.1',
      'llmgw.request_id': res.headers.get('x-request-id'),
    });
    expect(generation.attributes['gen_ai.response.time_to_first_chunk']).toBeGreaterThan(0);
    expect(generation.events.map((e) => e.name)).toContain('first_token');
    expect(relay.events.map((e) => e.name)).toEqual(expect.arrayContaining(['job_started', 'first_token']));
    expect(relay.attributes['gen_ai.usage.output_tokens']).toBe(MAX_TOKENS);

    // In time: the relay ends with the last frame, within the request's span; the job inside.
    expect(relay.endNs <= http.endNs).toBe(true);
    expect(generation.startNs >= add.startNs).toBe(true);
  });

  it('a request without traceparent starts its own trace; a refusal marks its spans failed with its code', async () => {
    const ok = await chat();
    expect(ok.status).toBe(200);
    const refused = await fetch(`${stack.apiUrls[0]}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
    });
    expect(refused.status).toBe(404);
    const byRequest = (id: string | null) => () =>
      receiver.spans().find((s) => s.kind === SPAN_KIND.server && s.attributes['llmgw.request_id'] === id);
    await until(() => byRequest(ok.headers.get('x-request-id'))() !== undefined, 15_000);
    await until(() => byRequest(refused.headers.get('x-request-id'))() !== undefined, 15_000);
    const root = byRequest(ok.headers.get('x-request-id'))()!;
    expect(root.parentSpanId).toBe('');
    await traceOf(root.traceId, ['chat', 'relay']);

    const refusedRoot = byRequest(refused.headers.get('x-request-id'))()!;
    expect(refusedRoot.attributes['http.response.status_code']).toBe(404);
    const refusedAdmission = one(
      receiver.spans().filter((s) => s.traceId === refusedRoot.traceId),
      'admission',
    );
    expect(refusedAdmission.statusCode).toBe(2);
    expect(refusedAdmission.attributes['error.type']).toBe('model_not_found');
  });

  it('no trace starts anywhere but at a request: every trace received has an HTTP request at its root', async () => {
    // The workers' idle polling and stalled-job checks run every few seconds: none of it is a trace.
    await new Promise((r) => setTimeout(r, 1500));
    const spans = receiver.spans();
    const roots = spans.filter(
      (s) => s.parentSpanId === '' || !spans.some((p) => p.spanId === s.parentSpanId),
    );
    expect(roots.length).toBeGreaterThan(0);
    for (const r of roots) expect([r.name, r.kind]).toEqual([r.name, SPAN_KIND.server]);
    expect(spans.some((s) => s.attributes['url.path'] === '/livez')).toBe(false);
  });
});
