import { randomBytes } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import type { ChainableCommander, Redis } from 'ioredis';
import type { Keys } from './keys.ts';

/**
 * Uploaded files (`/v1/files`: batch input, later batch output) in Redis, so that any api replica
 * and any worker reads them, and `pnpm start` needs nothing else. A file is two keys in its own
 * slot: its metadata (a hash) and its bytes, a hash of chunks of {@link FILE_CHUNK_BYTES}; the
 * user's list of files is a third key, in the user's slot. Every key has a TTL: a file's two its
 * `expires_at`, a file being uploaded {@link FILE_STAGING_TTL_MS} after its last chunk, the list
 * the longest a file can live. Layout in keys.ts.
 *
 * Chunks, not one string grown by APPEND: a string that grows reallocates (APPEND of a 100 MiB
 * file in 1 MiB pieces took 5× as long as HSET of the chunks, measured on Redis 7.0), and a
 * value one command writes whole is allocated to its size. The size is just under 1 MiB so that
 * a chunk with Redis's header fits jemalloc's 1 MiB size class: exactly 1 MiB of data would take
 * the next class, 1.25 MiB (files.test.ts measures the bytes per MiB of input).
 */
export const FILE_CHUNK_BYTES = 1024 * 1024 - 64;

/**
 * A file being uploaded keeps its chunks this long after the last one: an upload whose api died
 * leaves nothing behind for long. Above Node's requestTimeout (300 s), which ends a slower upload.
 */
export const FILE_STAGING_TTL_MS = 10 * 60_000;

/** What the gateway keeps about a file besides its bytes. */
export interface StoredFile {
  id: string;
  userId: string;
  filename: string;
  /** OpenAI's purpose: `batch` for uploads, `batch_output` for what a batch writes. */
  purpose: string;
  bytes: number;
  /** Lines with content (a batch input file: its requests). */
  lines: number;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms: the file and its bytes are gone from then on. */
  expiresAt: number;
}

/**
 * `file-` + 9 base-36 digits of the creation time in ms + 20 hex digits: ids of one user sort
 * by creation time (the list's order, and a cursor that still works once its file is gone), and
 * no two ids meet.
 */
export const FILE_ID_PATTERN = /^file-[0-9a-z]{29}$/;
const TIME_DIGITS = 9;

/** A new file id for a file created at `nowMs`. */
export function newFileId(nowMs = Date.now()): string {
  return `file-${timePart(nowMs)}${randomBytes(10).toString('hex')}`;
}

const timePart = (ms: number) => Math.max(0, Math.floor(ms)).toString(36).padStart(TIME_DIGITS, '0');

export const isFileId = (id: string): boolean => FILE_ID_PATTERN.test(id);

export interface FileStoreOptions {
  redis: Redis;
  keys: Pick<Keys, 'file' | 'fileContent' | 'userFiles'>;
  /** The longest a file lives (FILE_TTL_DAYS): how long the user's list is kept after an upload. */
  maxTtlMs: number;
}

export interface FileListQuery {
  /** Files after this id in `order` (a cursor: it need not exist any more). */
  after?: string;
  limit: number;
  order: 'asc' | 'desc';
  purpose?: string;
}

/** A file's bytes are gone (expired or deleted) while it was read. */
export class FileGoneError extends Error {
  override name = 'FileGoneError';
}

export class FileStore {
  constructor(private readonly opts: FileStoreOptions) {}

  /** Writes a new file's bytes chunk by chunk; {@link FileWriter.commit} makes it a file. */
  writer(id: string): FileWriter {
    return new FileWriter(this.opts, id);
  }

  /** The file, or undefined: never was, expired, deleted, or still being uploaded. */
  async get(id: string): Promise<StoredFile | undefined> {
    if (!isFileId(id)) return undefined;
    const h = await this.opts.redis.hgetall(this.opts.keys.file(id));
    return h.user === undefined ? undefined : fromHash(id, h);
  }

  /** The file's bytes, chunk by chunk, in order; throws {@link FileGoneError} if they go meanwhile. */
  async *chunks(file: StoredFile): AsyncGenerator<Buffer> {
    const key = this.opts.keys.fileContent(file.id);
    // Counted in bytes, not chunks: a file written with another chunk size reads the same.
    for (let i = 0, read = 0; read < file.bytes; i++) {
      const chunk = await this.opts.redis.hgetBuffer(key, String(i));
      if (chunk === null || chunk.length === 0) throw new FileGoneError(`the content of ${file.id} is gone`);
      read += chunk.length;
      yield chunk;
    }
  }

  /**
   * The file's lines as text (UTF-8), numbered from 1 as an editor shows them: split at `\n`, a
   * `\r` before it dropped, empty lines included (a batch input file's line numbers count them),
   * no line after a final `\n`.
   */
  async *lines(file: StoredFile): AsyncGenerator<{ line: number; text: string }> {
    const decoder = new StringDecoder('utf8');
    let rest = '';
    let line = 0;
    for await (const chunk of this.chunks(file)) {
      const text = rest + decoder.write(chunk);
      let start = 0;
      for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
        yield { line: ++line, text: stripCr(text.slice(start, nl)) };
        start = nl + 1;
      }
      rest = text.slice(start);
    }
    rest += decoder.end();
    if (rest !== '') yield { line: ++line, text: stripCr(rest) };
  }

  /** Removes the file; its place in the user's list goes after it. */
  async delete(file: StoredFile): Promise<void> {
    const { redis, keys } = this.opts;
    // UNLINK: Redis frees a 200 MB file's chunks off its main thread.
    await redis.unlink(keys.file(file.id), keys.fileContent(file.id));
    await redis.zrem(keys.userFiles(file.userId), file.id);
  }

  /**
   * The user's files in `order` of creation, after the cursor; `hasMore` when more follow. Members
   * whose file is gone are removed from the list on the way.
   */
  async list(userId: string, q: FileListQuery): Promise<{ files: StoredFile[]; hasMore: boolean }> {
    const { redis, keys } = this.opts;
    const key = keys.userFiles(userId);
    const page = Math.min(q.limit + 1, 1000);
    const found: StoredFile[] = [];
    let cursor = q.after;
    for (;;) {
      const ids =
        q.order === 'asc'
          ? await redis.zrangebylex(key, cursor ? `(${cursor}` : '-', '+', 'LIMIT', 0, page)
          : await redis.zrevrangebylex(key, cursor ? `(${cursor}` : '+', '-', 'LIMIT', 0, page);
      // One command per file, not a pipeline: on a Cluster the files are in slots of their own.
      const files = await Promise.all(ids.map((id) => this.get(id)));
      const gone = ids.filter((_, i) => files[i] === undefined);
      if (gone.length > 0) await redis.zrem(key, ...gone);
      for (const f of files) {
        if (f && f.userId === userId && (q.purpose === undefined || f.purpose === q.purpose)) found.push(f);
      }
      if (found.length > q.limit || ids.length < page) break;
      cursor = ids.at(-1);
    }
    return { files: found.slice(0, q.limit), hasMore: found.length > q.limit };
  }
}

/** A file being written: chunks go to Redis as they fill, under the staging TTL. */
export class FileWriter {
  private readonly chunk = Buffer.allocUnsafe(FILE_CHUNK_BYTES);
  private filled = 0;
  private chunks = 0;
  /** Bytes written so far. */
  bytes = 0;

  constructor(
    private readonly opts: FileStoreOptions,
    readonly id: string,
  ) {
    if (!isFileId(id)) throw new Error(`not a file id: ${id}`);
  }

  /** Appends `data` (copied: the caller may reuse it); resolves once Redis holds every full chunk. */
  async write(data: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < data.length) {
      const n = Math.min(FILE_CHUNK_BYTES - this.filled, data.length - offset);
      this.chunk.set(data.subarray(offset, offset + n), this.filled);
      this.filled += n;
      offset += n;
      this.bytes += n;
      if (this.filled === FILE_CHUNK_BYTES) await this.flush();
    }
  }

  private async flush(): Promise<void> {
    if (this.filled === 0) return;
    const key = this.opts.keys.fileContent(this.id);
    // The chunk and its TTL in one step: no chunk is ever without one.
    await exec(
      this.opts.redis
        .multi()
        .hset(key, String(this.chunks), this.chunk.subarray(0, this.filled))
        .pexpire(key, FILE_STAGING_TTL_MS),
    );
    this.chunks++;
    this.filled = 0;
  }

  /**
   * Makes the bytes written a file: its metadata and the TTL of its bytes in one MULTI (its
   * slot), then its place in the user's list, which also drops members older than any file can be.
   */
  async commit(meta: Omit<StoredFile, 'id' | 'bytes'>): Promise<StoredFile> {
    await this.flush();
    const { redis, keys, maxTtlMs } = this.opts;
    const file: StoredFile = { ...meta, id: this.id, bytes: this.bytes };
    const metaKey = keys.file(this.id);
    await exec(
      redis
        .multi()
        .hset(metaKey, {
          user: file.userId,
          filename: file.filename,
          purpose: file.purpose,
          bytes: file.bytes,
          lines: file.lines,
          created_at: file.createdAt,
          expires_at: file.expiresAt,
        })
        .pexpireat(metaKey, file.expiresAt)
        .pexpireat(keys.fileContent(this.id), file.expiresAt),
    );
    const list = keys.userFiles(file.userId);
    await exec(
      redis
        .multi()
        .zadd(list, 0, this.id)
        .zremrangebylex(list, '-', `(file-${timePart(file.createdAt - maxTtlMs)}`)
        .pexpire(list, maxTtlMs),
    );
    return file;
  }

  /** Drops what was written (a refused or broken upload). */
  async abort(): Promise<void> {
    this.filled = 0;
    await this.opts.redis.unlink(this.opts.keys.fileContent(this.id));
  }
}

function fromHash(id: string, h: Record<string, string>): StoredFile {
  return {
    id,
    userId: h.user ?? '',
    filename: h.filename ?? '',
    purpose: h.purpose ?? '',
    bytes: Number(h.bytes),
    lines: Number(h.lines),
    createdAt: Number(h.created_at),
    expiresAt: Number(h.expires_at),
  };
}

const stripCr = (s: string) => (s.endsWith('\r') ? s.slice(0, -1) : s);

/** EXEC, throwing the first command's error (ioredis returns them in the reply). */
async function exec(multi: ChainableCommander): Promise<void> {
  const replies = await multi.exec();
  if (replies === null) throw new Error('MULTI aborted');
  for (const [err] of replies) if (err) throw err;
}
