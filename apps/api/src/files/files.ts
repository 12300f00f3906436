import { FileGoneError, type FileStore, newFileId, type StoredFile } from '@llmgw/redis';
import type { z } from 'zod';
import { ApiError } from '../errors/index.ts';
import { firstIssue } from '../middleware/json-body.ts';
import {
  type FileDeleted,
  type FileList as FileListBody,
  FileListQuery,
  FileUploadFields,
  fileObject,
} from './bodies.ts';
import { boundaryOf, MultipartError, type MultipartEvent, MultipartReader } from './multipart.ts';

/**
 * Room for the form around the file: its other fields and each part's headers. A declared body
 * larger than the file limit plus this is refused before a byte of it is read.
 */
export const FORM_OVERHEAD_BYTES = 64 * 1024;
/** A text field (`purpose`, `expires_after[…]`) is short. */
const MAX_FIELD_BYTES = 1024;
const MAX_PARTS = 16;

export interface FilesOptions {
  store: FileStore;
  /** BATCH_FILE_MAX_BYTES. */
  maxBytes: number;
  /** BATCH_MAX_REQUESTS: lines with content. */
  maxRequests: number;
  /** FILE_TTL_DAYS, in ms: a file's default and longest life. */
  ttlMs: number;
  now?: () => number;
}

/** An upload as the route hands it over: the request's body and the headers that frame it. */
export interface Upload {
  body: AsyncIterable<Uint8Array>;
  contentType: string | undefined;
  contentLength: string | undefined;
}

/**
 * `/v1/files` for its users: upload (a multipart form streamed into Redis, never whole in
 * memory), retrieve, content, delete, list. Only its user sees a file: for anyone else it does
 * not exist (404, as for a job).
 */
export class Files {
  private readonly now: () => number;

  constructor(private readonly opts: FilesOptions) {
    this.now = opts.now ?? Date.now;
  }

  get maxBytes(): number {
    return this.opts.maxBytes;
  }

  /** `POST /v1/files`: the form's file, stored as the user's; a 400 names what is wrong. */
  async upload(userId: string, upload: Upload): Promise<StoredFile> {
    const { maxBytes, maxRequests } = this.opts;
    const boundary = boundaryOf(upload.contentType);
    if (!boundary) {
      throw new ApiError(
        'invalid_request',
        'expected a multipart/form-data body (with a boundary) holding `file` and `purpose`',
      );
    }
    const cap = maxBytes + FORM_OVERHEAD_BYTES;
    const declared = upload.contentLength === undefined ? Number.NaN : Number(upload.contentLength);
    if (declared > cap) throw closing(this.tooLarge());

    const createdAt = this.now();
    const writer = this.opts.store.writer(newFileId(createdAt));
    const reader = new MultipartReader(boundary);
    const counter = new LineCounter();
    const fields: Record<string, string> = {};
    let parts = 0;
    let part: { name: string; file: boolean; text: Buffer[]; size: number } | undefined;
    let filename: string | undefined;
    /** Why the upload is refused, once known: the rest of the body is read and dropped first. */
    let refusal: ApiError | undefined;
    let received = 0;

    const onEvent = async (ev: MultipartEvent): Promise<void> => {
      if (ev.type === 'part') {
        if (++parts > MAX_PARTS) throw invalid(`the form has more than ${MAX_PARTS} fields`);
        const isFile = ev.name === 'file';
        if (isFile && filename !== undefined) throw invalid('the form has more than one `file`', 'file');
        if (isFile) filename = ev.filename ?? 'file';
        part = { name: ev.name, file: isFile, text: [], size: 0 };
      } else if (ev.type === 'data') {
        if (!part) return;
        if (part.file) {
          if (writer.bytes + ev.data.length > maxBytes) throw this.tooLarge();
          counter.add(ev.data);
          if (counter.lines > maxRequests) throw this.tooManyLines();
          await storing(writer.write(ev.data));
        } else {
          part.size += ev.data.length;
          if (part.size > MAX_FIELD_BYTES)
            throw invalid(`${part.name}: longer than ${MAX_FIELD_BYTES} bytes`, part.name);
          part.text.push(Buffer.from(ev.data));
        }
      } else if (part) {
        if (!part.file) {
          fields[part.name] = Buffer.concat(part.text).toString('utf8');
          // A wrong purpose sent before the file: refused before any of the file is stored.
          if (part.name === 'purpose') checkPurpose(fields.purpose);
        }
        part = undefined;
      }
    };

    try {
      try {
        for await (const chunk of upload.body) {
          received += chunk.length;
          // More than any acceptable form: answer now (the connection closes) rather than read on.
          if (received > cap) throw this.tooLarge();
          if (refusal) continue;
          try {
            for (const ev of reader.write(chunk)) await onEvent(ev);
          } catch (err) {
            if (err instanceof MultipartError)
              refusal = invalid(`not a valid multipart form: ${err.message}`);
            else if (err instanceof ApiError && err.status === 400) refusal = err;
            else throw err;
          }
        }
      } catch (err) {
        // The rest of the body is unread: the connection cannot carry another request.
        if (err instanceof ApiError) throw closing(err);
        // The request stream failed: the client went away mid-upload.
        throw new ApiError('client_closed_request', `the upload was cut off: ${(err as Error).message}`);
      }
      if (refusal) throw refusal;
      try {
        reader.end();
      } catch (err) {
        throw invalid(`not a valid multipart form: ${(err as Error).message}`);
      }
      const form = checkFields(fields);
      if (filename === undefined)
        throw invalid('file: missing; send the JSONL file as the form field `file`', 'file');
      const lines = counter.finish();
      if (lines > maxRequests) throw this.tooManyLines();
      if (writer.bytes === 0 || lines === 0)
        throw invalid('file: the file has no requests (it is empty)', 'file');
      const seconds = form['expires_after[seconds]'];
      const ttlMs = seconds === undefined ? this.opts.ttlMs : seconds * 1000;
      if (ttlMs > this.opts.ttlMs) {
        throw invalid(
          `expires_after[seconds]: at most ${this.opts.ttlMs / 1000} (FILE_TTL_DAYS, how long this gateway keeps a file)`,
          'expires_after[seconds]',
        );
      }
      return await storing(
        writer.commit({
          userId,
          filename: filename.slice(0, 255),
          purpose: form.purpose,
          lines,
          createdAt,
          expiresAt: createdAt + ttlMs,
        }),
      );
    } catch (err) {
      await writer.abort().catch(() => {});
      throw err;
    }
  }

  /** The user's file, or 404 (another user's too). */
  async retrieve(id: string, userId: string): Promise<StoredFile> {
    const file = await storing(this.opts.store.get(id));
    if (!file || file.userId !== userId) {
      throw new ApiError('not_found', `No such File object: ${id.slice(0, 64)}`, { param: 'id' });
    }
    return file;
  }

  /** Its bytes, chunk by chunk (a read that loses them midway throws FileGoneError). */
  async content(id: string, userId: string): Promise<{ file: StoredFile; chunks: AsyncIterable<Buffer> }> {
    const file = await this.retrieve(id, userId);
    return { file, chunks: this.opts.store.chunks(file) };
  }

  async delete(id: string, userId: string): Promise<z.infer<typeof FileDeleted>> {
    const file = await this.retrieve(id, userId);
    await storing(this.opts.store.delete(file));
    return { id: file.id, object: 'file', deleted: true };
  }

  /** `GET /v1/files`: the user's files, newest first unless `order=asc`, after the cursor. */
  async list(userId: string, query: Record<string, string>): Promise<z.infer<typeof FileListBody>> {
    const parsed = FileListQuery.safeParse(query);
    if (!parsed.success) {
      const { param, message } = firstIssue(parsed.error);
      throw new ApiError('invalid_request', message, param === undefined ? {} : { param });
    }
    const { purpose, limit, order, after } = parsed.data;
    const { files, hasMore } = await storing(
      this.opts.store.list(userId, {
        limit,
        order,
        ...(after !== undefined && { after }),
        ...(purpose !== undefined && { purpose }),
      }),
    );
    return {
      object: 'list',
      data: files.map(fileObject),
      has_more: hasMore,
      first_id: files[0]?.id ?? null,
      last_id: files.at(-1)?.id ?? null,
    };
  }

  private tooLarge(): ApiError {
    const { maxBytes } = this.opts;
    return invalid(
      `file: larger than ${maxBytes} bytes (${(maxBytes / 1024 / 1024).toFixed(1)} MiB), the limit of a batch input file (BATCH_FILE_MAX_BYTES)`,
      'file',
    );
  }

  private tooManyLines(): ApiError {
    const max = this.opts.maxRequests;
    return invalid(
      `file: more than ${max} requests (lines), the limit of a batch input file (BATCH_MAX_REQUESTS)`,
      'file',
    );
  }
}

const invalid = (message: string, param?: string) =>
  new ApiError('invalid_request', message, param === undefined ? {} : { param });

/** The same error, telling the client not to reuse the connection (its body was not read to the end). */
const closing = (err: ApiError) =>
  new ApiError(err.code, err.message, { ...err.opts, headers: { ...err.opts.headers, Connection: 'close' } });

function checkPurpose(value: string | undefined): void {
  const parsed = FileUploadFields.shape.purpose.safeParse(value);
  if (!parsed.success) throw invalid(`purpose: ${parsed.error.issues[0]?.message}`, 'purpose');
}

function checkFields(fields: Record<string, string | undefined>): z.infer<typeof FileUploadFields> {
  const known = Object.fromEntries(
    Object.entries(fields).filter(([k, v]) => v !== undefined && k in FileUploadFields.shape),
  );
  const parsed = FileUploadFields.safeParse(known);
  if (parsed.success) return parsed.data;
  const { param, message } = firstIssue(parsed.error);
  throw invalid(message, param);
}

/** Redis failing under a file operation is the gateway's 503, like any request path's. */
async function storing<T>(op: Promise<T>): Promise<T> {
  try {
    return await op;
  } catch (err) {
    if (err instanceof ApiError || err instanceof FileGoneError) throw err;
    throw new ApiError(
      'service_unavailable',
      `file storage is unavailable (${(err as Error).message}); retry shortly`,
      {
        headers: { 'Retry-After': '1' },
      },
    );
  }
}

/**
 * Counts lines with content (a batch file's requests) in bytes that come in pieces: a line is
 * counted at its `\n`, or at the end, unless it is empty or a lone `\r`.
 */
export class LineCounter {
  lines = 0;
  private open = false;

  add(data: Uint8Array): void {
    let pos = 0;
    for (;;) {
      const nl = data.indexOf(0x0a, pos);
      const end = nl === -1 ? data.length : nl;
      if (end - pos > 1 || (end - pos === 1 && data[pos] !== 0x0d)) this.open = true;
      if (nl === -1) return;
      if (this.open) this.lines++;
      this.open = false;
      pos = nl + 1;
    }
  }

  /** The count, the last line (one without a final `\n`) included. */
  finish(): number {
    if (this.open) this.lines++;
    this.open = false;
    return this.lines;
  }
}
