import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../stack/common.ts';
import { type Stack, startStack } from '../stack/in-process.ts';

/**
 * The official openai SDK (v6) on `/v1/files` of a running api, with its default settings (retries
 * included) and the gateway's default limits: what a Batch API user's code does first. The
 * limits are exceeded on a second replica with small ones (a 200 MiB upload to refuse would only
 * make the test slow).
 */

const MiB = 1024 * 1024;
const request = (i: number, content: string) =>
  JSON.stringify({
    custom_id: `req-${i}`,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'sim-llama-3-8b', messages: [{ role: 'user', content }], max_tokens: 8 },
  });

/** A batch input file of about `bytes`: CRLF and LF line ends, non-ASCII text, no final newline. */
function batchFile(bytes: number): Buffer {
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes + 4096; i++) {
    const line = request(i, `Translate «${'bonjour '.repeat(40)}» — line ${i} 🙂`);
    lines.push(line);
    size += Buffer.byteLength(line) + 2;
  }
  return Buffer.from(
    lines
      .map((l, i) => (i % 2 ? `${l}\r\n` : `${l}\n`))
      .join('')
      .trimEnd(),
  );
}

let stack: Stack;
let client: OpenAI;
beforeAll(async () => {
  // Files need only the api and Redis.
  stack = await startStack({ noSim: true, workers: [] });
  client = new OpenAI({ baseURL: `${stack.apiUrl}/v1`, apiKey: stack.apiKey });
});
afterAll(() => stack?.close());

/** Keys of files under the stack's prefix (metadata and content). */
const fileKeys = async () => {
  const found: string[] = [];
  for await (const batch of stack.redis.scanStream({ match: `${stack.prefix}:file:*`, count: 1000 }))
    found.push(...(batch as string[]));
  return found.sort();
};

describe('openai SDK: files.create, retrieve, content, list, delete', () => {
  it('round-trips a 3 MiB file byte for byte (over BODY_LIMIT_BYTES, 1 MiB)', async () => {
    const bytes = batchFile(3 * MiB);
    expect(bytes.length).toBeGreaterThan(3 * MiB);
    const created = await client.files.create({
      file: await toFile(bytes, 'batch-input.jsonl'),
      purpose: 'batch',
    });
    expect(created).toEqual({
      id: expect.stringMatching(/^file-/),
      object: 'file',
      bytes: bytes.length,
      created_at: expect.any(Number),
      expires_at: created.created_at + 30 * 86_400,
      filename: 'batch-input.jsonl',
      purpose: 'batch',
      status: 'processed',
      status_details: null,
    });
    expect(Math.abs(created.created_at - Date.now() / 1000)).toBeLessThan(60);

    expect(await client.files.retrieve(created.id)).toEqual(created);
    const content = await client.files.content(created.id);
    expect(content.headers.get('content-length')).toBe(String(bytes.length));
    expect(Buffer.from(await content.arrayBuffer()).equals(bytes)).toBe(true);

    const listed: OpenAI.Files.FileObject[] = [];
    for await (const f of client.files.list()) listed.push(f);
    expect(listed.find((f) => f.id === created.id)).toEqual(created);

    expect(await client.files.delete(created.id)).toEqual({ id: created.id, object: 'file', deleted: true });
    await expect(client.files.retrieve(created.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(client.files.content(created.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    expect(await fileKeys()).not.toContain(`${stack.prefix}:file:{${created.id}}`);
  });

  it('pages through the list the SDK’s way (limit, has_more, after), newest first or oldest', async () => {
    const user = await createApiKey(stack.redis, stack.keys, 'pager');
    const pager = new OpenAI({ baseURL: `${stack.apiUrl}/v1`, apiKey: user.key });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const f = await pager.files.create({
        file: await toFile(Buffer.from(request(i, 'hi')), `${i}.jsonl`),
        purpose: 'batch',
      });
      ids.push(f.id);
    }
    const pages: number[] = [];
    const seen: string[] = [];
    for await (const page of (await pager.files.list({ limit: 1 })).iterPages()) {
      pages.push(page.data.length);
      seen.push(...page.data.map((f) => f.id));
    }
    expect(seen).toEqual([...ids].reverse());
    expect(pages).toEqual([1, 1, 1]);
    const asc: string[] = [];
    for await (const f of pager.files.list({ limit: 2, order: 'asc' })) asc.push(f.id);
    expect(asc).toEqual(ids);
  });

  it('another user’s file is a NotFoundError, for retrieve, content and delete', async () => {
    const mine = await client.files.create({
      file: await toFile(Buffer.from(request(1, 'mine')), 'mine.jsonl'),
      purpose: 'batch',
    });
    const other = await createApiKey(stack.redis, stack.keys, 'someone-else');
    const theirs = new OpenAI({ baseURL: `${stack.apiUrl}/v1`, apiKey: other.key });
    for (const op of [
      () => theirs.files.retrieve(mine.id),
      () => theirs.files.content(mine.id),
      () => theirs.files.delete(mine.id),
    ]) {
      const err = await op().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(OpenAI.NotFoundError);
      expect((err as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('not_found');
    }
    const theirList: string[] = [];
    for await (const f of theirs.files.list()) theirList.push(f.id);
    expect(theirList).not.toContain(mine.id);
    expect((await client.files.retrieve(mine.id)).id).toBe(mine.id);
  });

  it('a purpose other than batch is a BadRequestError naming `purpose`', async () => {
    const err = await client.files
      .create({ file: await toFile(Buffer.from(request(1, 'x')), 'a.jsonl'), purpose: 'fine-tune' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err).toMatchObject({ status: 400, param: 'purpose', code: 'invalid_request' });
  });
});

describe('over the limits (a replica with BATCH_FILE_MAX_BYTES 2 MiB, BATCH_MAX_REQUESTS 10)', () => {
  let small: OpenAI;
  beforeAll(async () => {
    const replica = await stack.startApi({ BATCH_FILE_MAX_BYTES: String(2 * MiB), BATCH_MAX_REQUESTS: '10' });
    small = new OpenAI({ baseURL: `${replica.url}/v1`, apiKey: stack.apiKey });
  });

  const refusal = async (file: Buffer) =>
    small.files.create({ file: await toFile(file, 'big.jsonl'), purpose: 'batch' }).catch((e: unknown) => e);

  it('a file one byte over, or four times over (refused before it is read), is a 400 the SDK raises', async () => {
    const before = await fileKeys();
    for (const size of [2 * MiB + 1, 8 * MiB]) {
      const file = Buffer.alloc(size, 'x');
      const err = await refusal(file);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect(err).toMatchObject({ status: 400, param: 'file' });
      expect((err as Error).message).toMatch(/larger than 2097152 bytes .*BATCH_FILE_MAX_BYTES/);
    }
    // At the limit it is taken.
    const at = await small.files.create({
      file: await toFile(Buffer.alloc(2 * MiB, 'x'), 'at.jsonl'),
      purpose: 'batch',
    });
    expect(at.bytes).toBe(2 * MiB);
    await small.files.delete(at.id);
    expect(await fileKeys()).toEqual(before);
  });

  it('a file of more lines than BATCH_MAX_REQUESTS is a 400', async () => {
    const lines = Array.from({ length: 11 }, (_, i) => request(i, 'x')).join('\n');
    const err = await refusal(Buffer.from(lines));
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as Error).message).toMatch(/more than 10 requests .*BATCH_MAX_REQUESTS/);
  });
});
