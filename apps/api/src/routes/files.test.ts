import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../testing/app-deps.ts';

/**
 * `/v1/files` through the app (`app.request()`), on the real api parts and the test Redis: the
 * answers a client gets. With small limits, so that a file over them is cheap to send; the real
 * clients at the default limits are in e2e/src/files/.
 */

const MAX_BYTES = 64 * 1024;
let t: TestApp;
let alice: Awaited<ReturnType<TestApp['keyOf']>>;
let bob: Awaited<ReturnType<TestApp['keyOf']>>;
beforeAll(async () => {
  t = await buildTestApp({
    BODY_LIMIT_BYTES: '4096',
    BATCH_FILE_MAX_BYTES: String(MAX_BYTES),
    BATCH_MAX_REQUESTS: '100',
    FILE_TTL_DAYS: '2',
  });
  alice = await t.keyOf();
  bob = await t.keyOf();
});
afterAll(() => t?.close());

const line = (i: number) =>
  `${JSON.stringify({ custom_id: `r${i}`, method: 'POST', url: '/v1/chat/completions', body: { messages: [{ role: 'user', content: `hi ${i}` }] } })}\n`;
const jsonl = (n: number) => Array.from({ length: n }, (_, i) => line(i)).join('');

type Field = [string, string | Blob, string?];
const form = (fields: Field[]) => {
  const f = new FormData();
  for (const [name, value, filename] of fields) {
    if (typeof value === 'string') f.append(name, value);
    else f.append(name, value, filename);
  }
  return f;
};
const fileField = (content: string | Uint8Array, filename = 'input.jsonl'): Field => [
  'file',
  new Blob([content]),
  filename,
];

const upload = (fields: Field[], who = alice) =>
  t.app.request('/v1/files', { method: 'POST', headers: who.headers, body: form(fields) });
const get = (path: string, who = alice) => t.app.request(path, { headers: who.headers });

interface FileBody {
  id: string;
  object: string;
  bytes: number;
  created_at: number;
  expires_at: number;
  filename: string;
  purpose: string;
  status: string;
}
interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

async function uploaded(content: string | Uint8Array, filename?: string): Promise<FileBody> {
  const res = await upload([['purpose', 'batch'], fileField(content, filename)]);
  expect(res.status).toBe(200);
  return (await res.json()) as FileBody;
}

async function refused(res: Response, param: string | null, message: RegExp): Promise<void> {
  const body = (await res.json()) as ErrorBody;
  expect({ status: res.status, param: body.error.param, type: body.error.type }).toEqual({
    status: 400,
    param,
    type: 'invalid_request_error',
  });
  expect(body.error.message).toMatch(message);
}

describe('POST /v1/files', () => {
  it('stores a file larger than BODY_LIMIT_BYTES and answers OpenAI’s file object', async () => {
    const content = jsonl(90); // ≈ 10 KB, over the 4 KiB body limit of every other route
    expect(content.length).toBeGreaterThan(4096);
    const before = Math.floor(Date.now() / 1000);
    const file = await uploaded(content, 'my input €.jsonl');
    expect(file).toEqual({
      id: expect.stringMatching(/^file-[0-9a-z]{29}$/),
      object: 'file',
      bytes: Buffer.byteLength(content),
      created_at: expect.any(Number),
      expires_at: file.created_at + 2 * 86_400,
      filename: 'my input €.jsonl',
      purpose: 'batch',
      status: 'processed',
      status_details: null,
    });
    expect(file.created_at).toBeGreaterThanOrEqual(before);
    // The other routes keep BODY_LIMIT_BYTES.
    const big = await t.app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { ...alice.headers, 'content-type': 'application/json', 'content-length': '5000' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(4900) }] }),
    });
    expect(big.status).toBe(413);
  });

  it('gives back the bytes as uploaded, and every key it wrote has a TTL', async () => {
    const bytes = Buffer.concat([
      Buffer.from(`${line(1)}\r\n  \n`),
      Buffer.from([0xe2, 0x82, 0xac, 0xff, 0x00]),
    ]);
    const file = await uploaded(bytes);
    const res = await get(`/v1/files/${file.id}/content`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-length')).toBe(String(bytes.length));
    expect(res.headers.get('content-disposition')).toBe(
      `attachment; filename="input.jsonl"; filename*=UTF-8''input.jsonl`,
    );
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
    for (const key of await t.keysInUse()) {
      if (!key.includes(':file')) continue;
      expect({ key, ttl: (await t.redis.pttl(key)) > 0 }).toEqual({ key, ttl: true });
    }
  });

  it('takes purpose after the file, as the Node SDK sends it, and OpenAI’s expires_after', async () => {
    const res = await upload([
      fileField(line(1)),
      ['purpose', 'batch'],
      ['expires_after[anchor]', 'created_at'],
      ['expires_after[seconds]', '7200'],
    ]);
    expect(res.status).toBe(200);
    const file = (await res.json()) as FileBody;
    expect(file.expires_at - file.created_at).toBe(7200);
    expect(await t.redis.pttl(t.keys.file(file.id))).toBeLessThanOrEqual(7200_000);
  });

  it('refuses another purpose, a missing purpose or file, an empty file, a form it cannot read', async () => {
    await refused(await upload([['purpose', 'fine-tune'], fileField(line(1))]), 'purpose', /must be 'batch'/);
    await refused(
      await upload([fileField(line(1)), ['purpose', 'assistants']]),
      'purpose',
      /must be 'batch'/,
    );
    await refused(await upload([fileField(line(1))]), 'purpose', /purpose/);
    await refused(await upload([['purpose', 'batch']]), 'file', /file: missing/);
    await refused(await upload([['purpose', 'batch'], fileField('')]), 'file', /empty/);
    await refused(await upload([['purpose', 'batch'], fileField('\n\r\n\n')]), 'file', /empty/);
    await refused(
      await upload([['purpose', 'batch'], fileField(line(1)), fileField(line(2))]),
      'file',
      /more than one/,
    );
    const json = await t.app.request('/v1/files', {
      method: 'POST',
      headers: { ...alice.headers, 'content-type': 'application/json' },
      body: JSON.stringify({ purpose: 'batch' }),
    });
    await refused(json, null, /multipart\/form-data/);
    const cut = await t.app.request('/v1/files', {
      method: 'POST',
      headers: { ...alice.headers, 'content-type': 'multipart/form-data; boundary=b' },
      body: '--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--b\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nhalf',
    });
    await refused(cut, null, /closing boundary/);
    await refused(
      await upload([['purpose', 'batch'], fileField(line(1)), ['expires_after[seconds]', '7200']]),
      'expires_after[anchor]',
      /both/,
    );
    await refused(
      await upload([
        ['purpose', 'batch'],
        fileField(line(1)),
        ['expires_after[anchor]', 'created_at'],
        ['expires_after[seconds]', String(3 * 86_400)],
      ]),
      'expires_after[seconds]',
      /at most 172800 \(FILE_TTL_DAYS/,
    );
  });

  it('refuses a file over BATCH_FILE_MAX_BYTES or BATCH_MAX_REQUESTS, and keeps nothing of it', async () => {
    const before = (await t.keysInUse()).filter((k) => k.includes(':file')).length;
    await refused(
      await upload([['purpose', 'batch'], fileField('x'.repeat(MAX_BYTES + 1))]),
      'file',
      /larger than 65536 bytes .*BATCH_FILE_MAX_BYTES/,
    );
    // Exactly at the limit is fine (one line, so within the request count too).
    const atLimit = await uploaded(`${'x'.repeat(MAX_BYTES - 1)}\n`);
    expect(atLimit.bytes).toBe(MAX_BYTES);
    await refused(
      await upload([['purpose', 'batch'], fileField(jsonl(101))]),
      'file',
      /more than 100 requests/,
    );
    expect((await uploaded(jsonl(100))).bytes).toBe(Buffer.byteLength(jsonl(100)));
    // A declared body over the limit is refused before it is read, and the connection closes.
    const declared = await t.app.request('/v1/files', {
      method: 'POST',
      headers: {
        ...alice.headers,
        'content-type': 'multipart/form-data; boundary=b',
        'content-length': String(MAX_BYTES * 4),
      },
      body: '--b--',
    });
    expect(declared.headers.get('connection')).toBe('close');
    await refused(declared, 'file', /larger than/);
    // A body of unknown length (chunked) is cut off once it is larger than any acceptable form.
    const head = Buffer.from('--b\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n');
    let sent = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        sent += 16_384;
        controller.enqueue(sent === 16_384 ? head : new Uint8Array(16_384).fill(120));
        if (sent > MAX_BYTES * 10) controller.close();
      },
    });
    const chunked = await t.app.request('/v1/files', {
      method: 'POST',
      headers: { ...alice.headers, 'content-type': 'multipart/form-data; boundary=b' },
      body: endless,
      duplex: 'half',
    } as RequestInit);
    expect(chunked.headers.get('connection')).toBe('close');
    await refused(chunked, 'file', /larger than/);
    expect(sent).toBeLessThan(MAX_BYTES * 4); // the cap (limit + 64 KiB), and what the stream read ahead
    // What remains: the two accepted files' metadata and content, and alice's list.
    const after = (await t.keysInUse()).filter((k) => k.includes(':file'));
    expect(after.length - before).toBe(4);
  });

  it('needs an API key, like every /v1 route', async () => {
    const res = await t.app.request('/v1/files', { method: 'POST', body: form([['purpose', 'batch']]) });
    expect(res.status).toBe(401);
    expect((await t.app.request('/v1/files')).status).toBe(401);
  });
});

describe('a file is its owner’s only', () => {
  it('another user gets 404 for it, as for a file that does not exist, and cannot delete it', async () => {
    const file = await uploaded(line(7));
    for (const [method, path] of [
      ['GET', `/v1/files/${file.id}`],
      ['GET', `/v1/files/${file.id}/content`],
      ['DELETE', `/v1/files/${file.id}`],
    ] as const) {
      const theirs = await t.app.request(path, { method, headers: bob.headers });
      const none = await t.app.request(path.replace(file.id, 'file-0000000000000000000000000000a'), {
        method,
        headers: alice.headers,
      });
      for (const res of [theirs, none]) {
        expect(res.status).toBe(404);
        expect(((await res.json()) as ErrorBody).error).toMatchObject({
          code: 'not_found',
          type: 'not_found_error',
        });
      }
    }
    const list = (await (await get('/v1/files', bob)).json()) as { data: FileBody[] };
    expect(list.data.map((f) => f.id)).not.toContain(file.id);
    expect((await get(`/v1/files/${file.id}`)).status).toBe(200);
  });

  it('DELETE removes it: then 404, gone from the list, its keys gone', async () => {
    const file = await uploaded(line(8));
    const del = await t.app.request(`/v1/files/${file.id}`, { method: 'DELETE', headers: alice.headers });
    expect(await del.json()).toEqual({ id: file.id, object: 'file', deleted: true });
    expect((await get(`/v1/files/${file.id}`)).status).toBe(404);
    expect((await get(`/v1/files/${file.id}/content`)).status).toBe(404);
    expect(
      (await t.app.request(`/v1/files/${file.id}`, { method: 'DELETE', headers: alice.headers })).status,
    ).toBe(404);
    const list = (await (await get('/v1/files')).json()) as { data: FileBody[] };
    expect(list.data.map((f) => f.id)).not.toContain(file.id);
    expect(await t.redis.exists(t.keys.file(file.id), t.keys.fileContent(file.id))).toBe(0);
  });
});

describe('GET /v1/files', () => {
  it('lists newest first, pages with limit and after, either order, by purpose', async () => {
    const carol = await t.keyOf();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await upload([['purpose', 'batch'], fileField(line(i))], carol);
      ids.push(((await res.json()) as FileBody).id);
    }
    const page = async (query: string) =>
      (await (await get(`/v1/files${query}`, carol)).json()) as {
        object: string;
        data: FileBody[];
        has_more: boolean;
        first_id: string | null;
        last_id: string | null;
      };
    const all = await page('');
    expect(all).toMatchObject({ object: 'list', has_more: false, first_id: ids[2], last_id: ids[0] });
    expect(all.data.map((f) => f.id)).toEqual([...ids].reverse());
    const first = await page('?limit=2');
    expect(first.data.map((f) => f.id)).toEqual([ids[2], ids[1]]);
    expect(first.has_more).toBe(true);
    const second = await page(`?limit=2&after=${first.last_id}`);
    expect(second.data.map((f) => f.id)).toEqual([ids[0]]);
    expect(second.has_more).toBe(false);
    expect((await page('?order=asc&limit=1')).data.map((f) => f.id)).toEqual([ids[0]]);
    expect((await page('?purpose=batch_output')).data).toEqual([]);
    expect(await page('?purpose=batch_output')).toMatchObject({ first_id: null, last_id: null });
    expect((await page('?purpose=batch')).data).toHaveLength(3);
  });

  it('refuses a limit, order or cursor it cannot read, naming it', async () => {
    for (const [query, param] of [
      ['limit=0', 'limit'],
      ['limit=10001', 'limit'],
      ['limit=x', 'limit'],
      ['order=up', 'order'],
      ['after=nope', 'after'],
    ]) {
      await refused(await get(`/v1/files?${query}`), param!, new RegExp(`^${param}: `));
    }
  });
});
