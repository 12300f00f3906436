import type { Context } from 'hono';
import type { z } from 'zod';
import { ApiError } from '../errors/index.ts';

/**
 * Reads the body as JSON whatever the Content-Type says: `curl -d` sends
 * `application/x-www-form-urlencoded`, and the seed's checklist relies on it. Then validates it
 * with `schema`; the first issue names the field in `param` and the message.
 * The size limit is enforced before this by `bodyLimit` (413).
 */
export async function readJsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  const text = await c.req.text();
  if (text.trim() === '') throw new ApiError('invalid_json', 'request body is empty; send a JSON object');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ApiError('invalid_json', `request body is not valid JSON: ${(err as Error).message}`);
  }
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const param = issue && issue.path.length > 0 ? issue.path.map(String).join('.') : undefined;
  const message = issue ? `${param ?? 'body'}: ${issue.message}` : 'invalid request body';
  throw new ApiError('invalid_request', message, param === undefined ? {} : { param });
}
