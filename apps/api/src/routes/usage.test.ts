import { randomUUID } from 'node:crypto';
import { OpenApiChecker, type OpenApiDocument } from '@llmgw/devkit';
import { recordUsage, type UsageCount } from '@llmgw/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../testing/app-deps.ts';

/**
 * `GET /v1/usage` and `GET /admin/usage` over a ledger written as the workers write it
 * (recordUsage, real Redis): who sees what, the groupings, costs, CSV, and every 400.
 * The numbers against a real backend's: e2e/src/usage/usage-ledger.test.ts.
 */
const ADMIN_TOKEN = 'admin-token-for-usage-tests';
const PRICES = { 'sim-a': { input: 1, output: 2 }, 'sim-b': { input: 0.5, output: 0 } };
const DAY_MS = 86_400_000;
const today = new Date().toISOString().slice(0, 10);
const yesterday = new Date(Date.now() - DAY_MS).toISOString().slice(0, 10);

let t: TestApp;
let doc: OpenApiChecker;
let alice: { headers: Record<string, string>; keys: string[] };
let bob: { headers: Record<string, string>; key: string };
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

beforeAll(async () => {
  t = await buildTestApp({ ADMIN_TOKEN, PRICES_JSON: JSON.stringify(PRICES), USAGE_RETENTION_DAYS: '60' });
  doc = new OpenApiChecker((await (await t.app.request('/openapi.json')).json()) as OpenApiDocument);
  const a1 = await t.deps.keyStore.create('alice', 'enterprise');
  const a2 = await t.deps.keyStore.create('alice', 'enterprise');
  const b1 = await t.deps.keyStore.create('bob', 'enterprise');
  alice = { headers: { authorization: `Bearer ${a1.key}` }, keys: [a1.id, a2.id] };
  bob = { headers: { authorization: `Bearer ${b1.key}` }, key: b1.id };
  const count = (over: Partial<UsageCount>): UsageCount => ({
    jobId: randomUUID(),
    userId: 'alice',
    keyId: a1.id,
    model: 'sim-a',
    outcome: 'completed',
    usage: { promptTokens: 10, completionTokens: 20 },
    endedAt: Date.now(),
    ...over,
  });
  const counts = [
    count({}),
    count({ usage: { promptTokens: 1, completionTokens: 2 } }),
    count({ keyId: a2.id, model: 'sim-b' }),
    count({ outcome: 'cancelled', usage: { promptTokens: 10, completionTokens: 3 } }),
    count({ outcome: 'expired', usage: { promptTokens: 0, completionTokens: 0 } }),
    count({ endedAt: Date.now() - DAY_MS, model: 'unpriced' }),
    count({ userId: 'bob', keyId: b1.id, usage: { promptTokens: 1000, completionTokens: 1000 } }),
    // trusted_headers: no key.
    count({ userId: 'carol', keyId: undefined, model: 'sim-b' }),
  ];
  for (const c of counts) await recordUsage(t.redis, t.keys, c, 60);
});
afterAll(() => t?.close());

const get = async (path: string, headers: Record<string, string>) => {
  const res = await t.app.request(path, { headers });
  const { body } = await doc.checkResponse(
    'GET',
    path.startsWith('/v1') ? path.split('?')[0]! : '/v1/usage',
    res,
  );
  return { status: res.status, headers: res.headers, body, json: () => JSON.parse(body) };
};

describe('GET /v1/usage', () => {
  it("answers the caller's usage, every key of its user and nobody else's, by day by default", async () => {
    const r = await get(`/v1/usage?start=${yesterday}&end=${today}`, alice.headers);
    expect(r.status).toBe(200);
    const report = r.json();
    expect(report).toMatchObject({ object: 'usage', start: yesterday, end: today, group_by: ['day'] });
    expect(report.data).toEqual([
      expect.objectContaining({ day: yesterday, requests: 1, prompt_tokens: 10, completion_tokens: 20 }),
      expect.objectContaining({ day: today, requests: 5, prompt_tokens: 31, completion_tokens: 45 }),
    ]);
    expect(report.total).toMatchObject({
      requests: 6,
      prompt_tokens: 41,
      completion_tokens: 65,
      total_tokens: 106,
    });
    // Bob's 1000s are his alone.
    expect((await get('/v1/usage', bob.headers)).json().total).toMatchObject({
      requests: 1,
      prompt_tokens: 1000,
    });
  });

  it('groups by key, model and outcome; costs per model at its price, null when one has none', async () => {
    const byKey = (await get(`/v1/usage?group_by=key,model&start=${yesterday}`, alice.headers)).json();
    const [k1, k2] = alice.keys;
    expect(byKey.group_by).toEqual(['key', 'model']);
    expect(byKey.data.map((r: Record<string, unknown>) => [r.key, r.model, r.requests])).toEqual(
      [
        [k1, 'sim-a', 4],
        [k1, 'unpriced', 1],
        [k2, 'sim-b', 1],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0])) || String(a[1]).localeCompare(String(b[1]))),
    );
    const simA = byKey.data.find((r: Record<string, unknown>) => r.model === 'sim-a');
    // 21 prompt tokens at $1/M, 25 completion tokens at $2/M.
    expect(simA).toMatchObject({ input_cost_usd: 0.000021, output_cost_usd: 0.00005, cost_usd: 0.000071 });
    expect(byKey.data.find((r: Record<string, unknown>) => r.model === 'unpriced')).toMatchObject({
      cost_usd: null,
    });
    expect(byKey.total.cost_usd).toBeNull();

    const byOutcome = (await get('/v1/usage?group_by=outcome', alice.headers)).json();
    expect(
      byOutcome.data.map((r: Record<string, unknown>) => [r.outcome, r.requests, r.prompt_tokens]),
    ).toEqual([
      ['cancelled', 1, 10],
      ['completed', 4, 31],
      ['expired', 1, 0],
    ]);
  });

  it('answers CSV with Accept: text/csv', async () => {
    const r = await get('/v1/usage?group_by=model', { ...alice.headers, accept: 'text/csv' });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(r.headers.get('vary')).toBe('Accept');
    expect(r.body.split('\r\n')).toEqual([
      'model,requests,prompt_tokens,completion_tokens,total_tokens,input_cost_usd,output_cost_usd,cost_usd',
      'sim-a,4,21,25,46,0.000021,0.00005,0.000071',
      'sim-b,1,10,20,30,0.000005,0,0.000005',
      'unpriced,1,10,20,30,,,',
      '',
    ]);
    // JSON stays the default, and wins when preferred.
    const json = await get('/v1/usage', { ...alice.headers, accept: 'application/json, text/csv;q=0.5' });
    expect(json.headers.get('content-type')).toMatch(/^application\/json/);
  });

  it('refuses a bad query with 400 invalid_request naming the parameter, in the OpenAI shape', async () => {
    const cases: [string, string][] = [
      ['start=2026-02-30', 'start'],
      ['end=yesterday', 'end'],
      [`start=${today}&end=${yesterday}`, 'start'],
      ['start=2020-01-01', 'start'],
      ['group_by=week', 'group_by'],
      ['group_by=user', 'group_by'],
      ['group_by=day,day', 'group_by'],
      ['user=bob', 'user'],
    ];
    for (const [query, param] of cases) {
      const r = await get(`/v1/usage?${query}`, alice.headers);
      expect({ query, status: r.status }).toEqual({ query, status: 400 });
      expect(r.json().error).toMatchObject({ code: 'invalid_request', param, type: 'invalid_request_error' });
      expect(r.json().error.request_id).toBeTruthy();
    }
    expect((await get('/v1/usage', {})).status).toBe(401);
  });
});

describe('GET /admin/usage', () => {
  const adminGet = async (query: string, headers: Record<string, string> = admin) => {
    const res = await t.app.request(`/admin/usage${query}`, { headers });
    const body = await res.text();
    // The same body as /v1/usage's, by the document's schema.
    if (res.status === 200 && res.headers.get('content-type')?.startsWith('application/json')) {
      doc.validateBody('/admin/usage', doc.component('UsageReport'), 'application/json', body);
    }
    return { status: res.status, body, json: () => JSON.parse(body) };
  };

  it('answers everybody’s usage, filtered by user, key or model, grouped by user too', async () => {
    const all = (await adminGet('?group_by=user')).json();
    expect(all.data.map((r: Record<string, unknown>) => [r.user, r.requests])).toEqual([
      ['alice', 6],
      ['bob', 1],
      ['carol', 1],
    ]);
    const keyless = (await adminGet('?user=carol&group_by=key')).json();
    expect(keyless.data).toEqual([expect.objectContaining({ key: null, requests: 1 })]);
    expect((await adminGet(`?key=${bob.key}`)).json().total).toMatchObject({
      requests: 1,
      prompt_tokens: 1000,
    });
    expect(
      (await adminGet('?model=sim-b&group_by=user')).json().data.map((r: { user: string }) => r.user),
    ).toEqual(['alice', 'carol']);
    const csv = await adminGet('?group_by=user,key');
    expect(csv.status).toBe(200);
    const asCsv = await t.app.request('/admin/usage?group_by=user', {
      headers: { ...admin, accept: 'text/csv' },
    });
    // Alice's unpriced model makes her cost unknown: empty fields.
    expect((await asCsv.text()).split('\r\n').slice(0, 3)).toEqual([
      'user,requests,prompt_tokens,completion_tokens,total_tokens,input_cost_usd,output_cost_usd,cost_usd',
      'alice,6,41,65,106,,,',
      'bob,1,1000,1000,2000,0.001,0.002,0.003',
    ]);
  });

  it('is behind the admin guard, and refuses a bad query in the seed error shape', async () => {
    expect((await adminGet('', alice.headers)).status).toBe(401);
    const bad = await adminGet('?group_by=team');
    expect(bad.status).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'invalid_request', param: 'group_by' });
    expect((await adminGet('?model=')).json()).toMatchObject({ error: 'invalid_request', param: 'model' });
  });
});

describe('CSV and spreadsheets', () => {
  it("a user id that starts like a formula is written with a leading ' (no CSV injection)", async () => {
    const user = '=HYPERLINK("http://evil.example","x")';
    await recordUsage(
      t.redis,
      t.keys,
      {
        jobId: randomUUID(),
        userId: user,
        keyId: undefined,
        model: '+sim-evil',
        outcome: 'completed',
        usage: { promptTokens: 1, completionTokens: 1 },
        endedAt: Date.now(),
      },
      60,
    );
    const res = await t.app.request(`/admin/usage?group_by=user,model&user=${encodeURIComponent(user)}`, {
      headers: { ...admin, accept: 'text/csv' },
    });
    expect(res.status).toBe(200);
    const lines = (await res.text()).split('\r\n');
    expect(lines[1]).toBe(`"'=HYPERLINK(""http://evil.example"",""x"")",'+sim-evil,1,1,1,2,,,`);
  });
});
