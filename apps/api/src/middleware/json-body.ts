import type { Context, MiddlewareHandler } from 'hono';
import type { z } from 'zod';
import type { AppEnv } from '../context.ts';
import { ApiError } from '../errors/index.ts';

const tooLarge = (maxSize: number) =>
  // The unread rest of the body makes this connection unusable: tell the client not to reuse it.
  new ApiError('payload_too_large', `request body exceeds ${maxSize} bytes`, {
    headers: { Connection: 'close' },
  });

/**
 * BODY_LIMIT_BYTES: a declared `Content-Length` over the limit is refused at once (413, before
 * authentication); a chunked body is counted while {@link readJsonBody} reads it. Unlike Hono's
 * bodyLimit, this never touches `c.req.raw.body`, which makes @hono/node-server build a fetch
 * Request and web streams for every request (2 KiB and four ReadableStreams per open stream).
 */
export function bodyLimit(
  maxSize: number,
  {
    ownLimit = [],
  }: {
    /** Paths whose route limits its body itself: `POST /v1/files` takes files up to BATCH_FILE_MAX_BYTES. */
    ownLimit?: readonly string[];
  } = {},
): MiddlewareHandler<AppEnv> {
  return async function bodyLimitMiddleware(c, next) {
    if (ownLimit.includes(c.req.path)) return next();
    const length = c.req.header('content-length');
    if (length !== undefined && c.req.header('transfer-encoding') === undefined) {
      if (Number.parseInt(length, 10) > maxSize) throw tooLarge(maxSize);
    }
    c.set('bodyLimit', maxSize);
    await next();
  };
}

/** The body as text, at most the limit set by {@link bodyLimit}: from Node's request when served. */
export async function readBodyText(c: Context<AppEnv>): Promise<string> {
  const max = c.get('bodyLimit') ?? Number.POSITIVE_INFINITY;
  const incoming = c.env?.incoming;
  if (!incoming) {
    const text = await c.req.text();
    if (Buffer.byteLength(text) > max) throw tooLarge(max);
    return text;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of incoming as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw tooLarge(max);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}

/**
 * Reads the body as JSON whatever the Content-Type says: `curl -d` sends
 * `application/x-www-form-urlencoded`, and the seed's checklist relies on it. Then validates it
 * with `schema`; the first issue names the field in `param` and the message.
 * The size limit is {@link bodyLimit}'s (413).
 */
export async function readJsonBody<S extends z.ZodType>(
  c: Context<AppEnv>,
  schema: S,
  opts: { optional?: boolean } = {},
): Promise<z.infer<S>> {
  const text = await readBodyText(c);
  if (text.trim() === '') {
    // A body whose every field has a default may be left out.
    if (opts.optional) return schema.parse({});
    throw new ApiError('invalid_json', 'request body is empty; send a JSON object');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ApiError('invalid_json', `request body is not valid JSON: ${(err as Error).message}`);
  }
  if (nestsTooDeep(value)) {
    throw new ApiError('invalid_json', `request body nests deeper than ${MAX_JSON_DEPTH} levels`);
  }
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const { param, message } = firstIssue(result.error);
  throw new ApiError('invalid_request', message, param === undefined ? {} : { param });
}

/**
 * What a 400 says of a value the schema refused: its first issue, `param` the field's dotted
 * path, the message prefixed with it (`messages.0.role: …`). Batch input lines say the same.
 */
export function firstIssue(error: z.ZodError): { param?: string; message: string } {
  const issue = error.issues[0];
  const param = issue && issue.path.length > 0 ? issue.path.map(String).join('.') : undefined;
  return {
    ...(param !== undefined && { param }),
    message: issue ? `${param ?? 'body'}: ${issue.message}` : 'invalid request body',
  };
}

/**
 * How deep a body's arrays and objects may nest. Real requests stay far below (a tool's JSON
 * schema nests a level per property; OpenAI's strict schemas allow 5 levels); 10,000 levels
 * overflowed the stack at the enqueue and came back as a 503 that blamed the queue.
 */
export const MAX_JSON_DEPTH = 64;

/** Whether a parsed JSON value nests deeper than MAX_JSON_DEPTH, found without recursion. */
export function nestsTooDeep(value: unknown): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [v, depth] = item;
    if (v === null || typeof v !== 'object') continue;
    if (depth > MAX_JSON_DEPTH) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}
