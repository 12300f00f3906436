import type { IncomingMessage } from 'node:http';
import type { z } from 'zod';
import { SimError } from './errors.ts';

/** Generous: long prompts are part of what benchmarks send. */
const MAX_BODY_BYTES = 32 * 1024 * 1024;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => {
      if (tooLarge) reject(new SimError('too_large', `Request body exceeds ${MAX_BODY_BYTES} bytes`));
      else resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
  });
}

function describe(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'Invalid request body';
  const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return `${where}${issue.message}`;
}

/**
 * Reads and validates a JSON body; malformed JSON or a schema mismatch is a 400 SimError.
 * `onJson` sees the parsed body before validation (the request log keeps what was sent, not
 * what the schema made of it).
 */
export async function readJsonBody<S extends z.ZodType>(
  req: IncomingMessage,
  schema: S,
  onJson?: (json: unknown) => void,
): Promise<z.output<S>> {
  const raw = await readBody(req);
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new SimError('bad_request', `Invalid JSON body: ${(err as Error).message}`);
  }
  onJson?.(json);
  const result = schema.safeParse(json);
  if (!result.success) throw new SimError('bad_request', describe(result.error));
  return result.data;
}
