import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRedis, quitQuietly, waitReady } from './connection.ts';
import {
  FILE_CHUNK_BYTES,
  FILE_STAGING_TTL_MS,
  FileGoneError,
  FileStore,
  isFileId,
  newFileId,
  type StoredFile,
} from './files.ts';
import { createKeys } from './keys.ts';

const redis = createRedis(inject('redisUrl'), 'command', 'files-test');
const keys = createKeys(`test-${randomUUID()}`);
const DAY_MS = 86_400_000;
const store = new FileStore({ redis, keys, maxTtlMs: 30 * DAY_MS });
beforeAll(() => waitReady(redis));
afterAll(async () => {
  const k = await redis.keys(`${keys.prefix}:*`);
  if (k.length) await redis.del(...k);
  await quitQuietly(redis);
});

/** Stores `bytes` as a file of `userId`, written in pieces of `piece` bytes. */
async function put(
  bytes: Buffer,
  opts: { userId?: string; createdAt?: number; purpose?: string; piece?: number } = {},
): Promise<StoredFile> {
  const createdAt = opts.createdAt ?? Date.now();
  const w = store.writer(newFileId(createdAt));
  const piece = opts.piece ?? 65_536;
  for (let i = 0; i < bytes.length; i += piece) await w.write(bytes.subarray(i, i + piece));
  return w.commit({
    userId: opts.userId ?? 'alice',
    filename: 'input.jsonl',
    purpose: opts.purpose ?? 'batch',
    lines: 1,
    createdAt,
    expiresAt: createdAt + DAY_MS,
  });
}

const read = async (file: StoredFile) => {
  const parts: Buffer[] = [];
  for await (const c of store.chunks(file)) parts.push(c);
  return Buffer.concat(parts);
};

describe('FileStore', () => {
  it('keeps the bytes as written, across chunk boundaries, whatever the pieces they came in', async () => {
    const bytes = randomBytes(Math.floor(FILE_CHUNK_BYTES * 2.5));
    for (const piece of [1_000_003, 65_536, FILE_CHUNK_BYTES]) {
      const file = await put(bytes, { piece });
      expect(file.bytes).toBe(bytes.length);
      expect(await store.get(file.id)).toEqual(file);
      expect((await read(file)).equals(bytes)).toBe(true);
      expect(await redis.hlen(keys.fileContent(file.id))).toBe(3);
    }
  });

  it('gives every key a TTL: a short one while uploading, the file’s expiry once committed', async () => {
    const createdAt = Date.now();
    const w = store.writer(newFileId(createdAt));
    await w.write(randomBytes(FILE_CHUNK_BYTES + 10));
    const staged = await redis.pttl(keys.fileContent(w.id));
    expect(staged).toBeGreaterThan(FILE_STAGING_TTL_MS - 5000);
    expect(staged).toBeLessThanOrEqual(FILE_STAGING_TTL_MS);
    expect(await store.get(w.id)).toBeUndefined(); // not a file until committed
    const file = await w.commit({
      userId: 'ttl-user',
      filename: 'a.jsonl',
      purpose: 'batch',
      lines: 1,
      createdAt,
      expiresAt: createdAt + 3 * DAY_MS,
    });
    for (const key of [keys.file(file.id), keys.fileContent(file.id)]) {
      const ms = await redis.pttl(key);
      expect(ms).toBeGreaterThan(3 * DAY_MS - 60_000);
      expect(ms).toBeLessThanOrEqual(3 * DAY_MS);
    }
    expect(await redis.pttl(keys.userFiles('ttl-user'))).toBeGreaterThan(29 * DAY_MS);
  });

  it('an aborted upload leaves nothing', async () => {
    const w = store.writer(newFileId());
    await w.write(randomBytes(FILE_CHUNK_BYTES * 2));
    expect(await redis.exists(keys.fileContent(w.id))).toBe(1);
    await w.abort();
    expect(await redis.exists(keys.fileContent(w.id))).toBe(0);
  });

  it('reads lines as text: a character split by a chunk boundary, CRLF, empty lines, no final newline', async () => {
    const first = Buffer.from('{"n":1}\r\n\n');
    // "€" (3 bytes) starts 1 byte before the first chunk's end.
    const head = Buffer.alloc(FILE_CHUNK_BYTES - 1 - first.length, 'a');
    const bytes = Buffer.concat([first, head, Buffer.from('€b\n\n  \nlast')]);
    expect(bytes.indexOf('€')).toBe(FILE_CHUNK_BYTES - 1);
    const file = await put(bytes);
    const lines = [];
    for await (const l of store.lines(file)) lines.push(l);
    expect(lines.map((l) => l.line)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(lines.map((l) => (l.text.length > 20 ? `${l.text.slice(-3)}(${l.text.length})` : l.text))).toEqual(
      ['{"n":1}', '', `a€b(${head.length + 2})`, '', '  ', 'last'],
    );
  });

  it('a file deleted while it is read ends the read with FileGoneError, never short bytes', async () => {
    const file = await put(randomBytes(FILE_CHUNK_BYTES * 2));
    const it = store.chunks(file);
    expect((await it.next()).value).toHaveLength(FILE_CHUNK_BYTES);
    await store.delete(file);
    await expect(it.next()).rejects.toBeInstanceOf(FileGoneError);
    expect(await store.get(file.id)).toBeUndefined();
    expect(await redis.exists(keys.file(file.id), keys.fileContent(file.id))).toBe(0);
    expect(await redis.zscore(keys.userFiles('alice'), file.id)).toBeNull();
  });

  it('lists a user’s files by creation, either way, after a cursor (gone or not), by purpose', async () => {
    const t0 = Date.now() - 60_000;
    const files: StoredFile[] = [];
    for (let i = 0; i < 5; i++) {
      files.push(
        await put(Buffer.from(`${i}\n`), {
          userId: 'lister',
          createdAt: t0 + i * 1000,
          purpose: i === 3 ? 'batch_output' : 'batch',
        }),
      );
    }
    await put(Buffer.from('other\n'), { userId: 'someone-else' });
    const ids = (r: { files: StoredFile[] }) => r.files.map((f) => f.id);
    const all = files.map((f) => f.id);

    const desc = await store.list('lister', { limit: 100, order: 'desc' });
    expect(ids(desc)).toEqual([...all].reverse());
    expect(desc.hasMore).toBe(false);
    expect(ids(await store.list('lister', { limit: 100, order: 'asc' }))).toEqual(all);

    const first = await store.list('lister', { limit: 2, order: 'asc' });
    expect(ids(first)).toEqual(all.slice(0, 2));
    expect(first.hasMore).toBe(true);
    const next = await store.list('lister', { limit: 2, order: 'asc', after: all[1] });
    expect(ids(next)).toEqual(all.slice(2, 4));
    expect(ids(await store.list('lister', { limit: 2, order: 'desc', after: all[2] }))).toEqual([
      all[1],
      all[0],
    ]);
    expect(ids(await store.list('lister', { limit: 100, order: 'asc', purpose: 'batch_output' }))).toEqual([
      all[3],
    ]);

    // A file that expired (its keys gone) is skipped and leaves the list; a cursor on it still works.
    await redis.del(keys.file(all[2]!), keys.fileContent(all[2]!));
    expect(ids(await store.list('lister', { limit: 100, order: 'asc' }))).toEqual(
      all.filter((_, i) => i !== 2),
    );
    expect(await redis.zscore(keys.userFiles('lister'), all[2]!)).toBeNull();
    expect(ids(await store.list('lister', { limit: 1, order: 'asc', after: all[2] }))).toEqual([all[3]]);
  });

  it('an upload drops list members older than any file can live', async () => {
    const old = newFileId(Date.now() - 31 * DAY_MS);
    await redis.zadd(keys.userFiles('pruned'), 0, old);
    const file = await put(Buffer.from('x\n'), { userId: 'pruned' });
    expect(await redis.zrange(keys.userFiles('pruned'), '0', '-1')).toEqual([file.id]);
  });

  it('ids sort by creation time and match the checked pattern', () => {
    const a = newFileId(1_000);
    const b = newFileId(1_001);
    const c = newFileId(Date.UTC(2100, 0));
    expect([c, b, a].sort()).toEqual([a, b, c]);
    for (const id of [a, b, c]) expect(isFileId(id)).toBe(true);
    expect(isFileId('file-{x}')).toBe(false);
    expect(isFileId(`${a}x`)).toBe(false);
  });
});

describe('Redis memory per MiB of input', () => {
  it('is the input and a few hundred bytes (chunks fill their size class)', async () => {
    const MiB = 1024 * 1024;
    const size = 16 * MiB;
    const file = await put(randomBytes(size), { userId: 'memory' });
    const usage = async (key: string) => Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
    const content = await usage(keys.fileContent(file.id));
    const meta = await usage(keys.file(file.id));
    const list = await usage(keys.userFiles('memory'));
    const perMiB = (content + meta) / (size / MiB);
    console.log(
      `files: Redis MEMORY USAGE for a ${size / MiB} MiB file: content ${content} B, metadata ${meta} B, ` +
        `the user's list ${list} B; ${perMiB.toFixed(0)} B per MiB of input (${((perMiB / MiB - 1) * 100).toFixed(3)} % over)`,
    );
    expect(perMiB).toBeGreaterThan(MiB);
    // Chunks of exactly 1 MiB would take jemalloc's 1.25 MiB class: 25 % over.
    expect(perMiB).toBeLessThan(MiB * 1.005);
  });
});
