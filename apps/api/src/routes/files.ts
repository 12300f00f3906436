import type { Context } from 'hono';
import { describeRoute } from 'hono-openapi';
import type { AppEnv } from '../context.ts';
import { FileDeleted, FileList, FileObject, FileUploadForm, fileObject } from '../files/bodies.ts';
import type { Upload } from '../files/files.ts';
import type { AppDeps, GatewayApp } from '../hono-app.ts';
import { API_KEY_SECURITY, errorResponses, formRequest, GUARDED, json } from '../openapi/describe.ts';

export type FilesDeps = Pick<AppDeps, 'files'>;

/** The upload's path: it takes bodies up to BATCH_FILE_MAX_BYTES, not BODY_LIMIT_BYTES (app.ts). */
export const FILES_PATH = '/v1/files';

const fileId = { in: 'path' as const, name: 'id', required: true, schema: { type: 'string' as const } };

/**
 * `/v1/files`, OpenAI's Files API for the Batch API's input: upload (`multipart/form-data`,
 * `file` + `purpose=batch`), retrieve, content, delete, list. Files live in Redis
 * (packages/redis/src/files.ts) until their `expires_at` (FILE_TTL_DAYS). Only the file's user
 * sees it: for anyone else it is a 404, as if it did not exist.
 */
export function registerFiles(app: GatewayApp, deps: FilesDeps): void {
  const userOf = (c: Context<AppEnv>) => c.get('principal')!.userId;

  const uploadDoc = describeRoute({
    tags: ['files'],
    summary: 'Upload a batch input file (multipart: `file`, `purpose=batch`)',
    description:
      'A JSONL file, one request per line, for the Batch API. Up to BATCH_FILE_MAX_BYTES (200 MiB) and ' +
      'BATCH_MAX_REQUESTS (50,000) lines: larger is 400 with `param: "file"`; another purpose is 400 with ' +
      '`param: "purpose"`. BODY_LIMIT_BYTES does not apply here.',
    security: API_KEY_SECURITY,
    requestBody: formRequest(FileUploadForm),
    responses: {
      200: { description: 'the file', content: json(FileObject) },
      ...errorResponses('openai', [400, ...GUARDED]),
    },
  });
  app.post(FILES_PATH, uploadDoc, async (c) => {
    const file = await deps.files.upload(userOf(c), uploadOf(c));
    c.get('log').info({ file_id: file.id, bytes: file.bytes, lines: file.lines }, 'file_uploaded');
    return c.json(fileObject(file));
  });

  const listDoc = describeRoute({
    tags: ['files'],
    summary: "The caller's files, newest first (OpenAI's cursor page)",
    security: API_KEY_SECURITY,
    parameters: [
      { in: 'query', name: 'purpose', required: false, schema: { type: 'string' } },
      {
        in: 'query',
        name: 'limit',
        required: false,
        schema: { type: 'integer', minimum: 1, maximum: 10_000, default: 10_000 },
      },
      {
        in: 'query',
        name: 'order',
        required: false,
        schema: { type: 'string', enum: ['asc', 'desc'], default: 'desc' },
      },
      {
        in: 'query',
        name: 'after',
        required: false,
        description: 'a file id: the files after it in this order (the last id of the previous page)',
        schema: { type: 'string' },
      },
    ],
    responses: {
      200: { description: 'the files', content: json(FileList) },
      ...errorResponses('openai', [400, ...GUARDED]),
    },
  });
  app.get(FILES_PATH, listDoc, async (c) => c.json(await deps.files.list(userOf(c), c.req.query())));

  const oneDoc = (summary: string, responses: Parameters<typeof describeRoute>[0]['responses']) =>
    describeRoute({
      tags: ['files'],
      summary,
      security: API_KEY_SECURITY,
      parameters: [fileId],
      responses: { ...responses, ...errorResponses('openai', [404, ...GUARDED]) },
    });
  app.get(
    `${FILES_PATH}/:id`,
    oneDoc('The file', { 200: { description: 'the file', content: json(FileObject) } }),
    async (c) => c.json(fileObject(await deps.files.retrieve(c.req.param('id'), userOf(c)))),
  );
  app.get(
    `${FILES_PATH}/:id/content`,
    oneDoc('The file’s bytes, as uploaded', {
      200: {
        description: 'the bytes (Content-Length is the file’s size)',
        content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
      },
    }),
    async (c) => {
      const { file, chunks } = await deps.files.content(c.req.param('id'), userOf(c));
      return c.body(streamOf(chunks), 200, {
        'Content-Type': 'application/octet-stream',
        'Content-Length': String(file.bytes),
        'Content-Disposition': contentDisposition(file.filename),
      });
    },
  );
  app.delete(
    `${FILES_PATH}/:id`,
    oneDoc('Delete the file', { 200: { description: 'deleted', content: json(FileDeleted) } }),
    async (c) => c.json(await deps.files.delete(c.req.param('id'), userOf(c))),
  );
}

/**
 * The request body as it arrives: Node's request itself when served (never whole in memory; read
 * without destroying it on an early answer, so a 400 still reaches the client), else the web body.
 */
function uploadOf(c: Context<AppEnv>): Upload {
  const incoming = c.env?.incoming;
  const body: AsyncIterable<Uint8Array> = incoming
    ? { [Symbol.asyncIterator]: () => incoming.iterator({ destroyOnReturn: false }) }
    : (c.req.raw.body ?? emptyBody());
  return { body, contentType: c.req.header('content-type'), contentLength: c.req.header('content-length') };
}

async function* emptyBody(): AsyncGenerator<Uint8Array> {}

/** Chunks → a response body that reads the next chunk only when the client took the last one. */
function streamOf(chunks: AsyncIterable<Buffer>): ReadableStream<Uint8Array> {
  const it = chunks[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await it.next();
        if (next.done) controller.close();
        else controller.enqueue(new Uint8Array(next.value.buffer, next.value.byteOffset, next.value.length));
      } catch (err) {
        // A file deleted or expired midway: the response ends short of its Content-Length.
        controller.error(err);
      }
    },
    async cancel() {
      await it.return?.();
    },
  });
}

/** RFC 6266: an ASCII fallback, and the name itself percent-encoded (RFC 5987). */
function contentDisposition(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}
