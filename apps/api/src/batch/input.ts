import { type ChatMessage, isEmptyMessage } from '@llmgw/protocol';
import type { z } from 'zod';
import { firstIssue, nestsTooDeep } from '../middleware/json-body.ts';
import { CompletionRequest } from '../routes/completions.ts';
import { ChatCompletionRequest } from '../routes/openai-chat.ts';

/**
 * The lines of a batch input file, checked when a batch is created (issue 25 §1): each a JSON
 * object `{custom_id, method, url, body}` with `custom_id` unique in the file, `method` `POST`,
 * `url` one of the two endpoints, and `body` what that endpoint's route takes — validated by the
 * route's own schema, so a line is refused exactly when the same request sent alone would be.
 * The errors are OpenAI's batch `errors.data` entries (`{code, message, param, line}`), at most
 * `maxErrors` of them. No I/O: the caller reads the file (FileStore.lines) and feeds the lines.
 */

/** The endpoints a batch can run, each with the schema its route validates a body with. */
export const BATCH_ENDPOINTS = {
  '/v1/chat/completions': ChatCompletionRequest,
  '/v1/completions': CompletionRequest,
} as const;
export type BatchEndpoint = keyof typeof BATCH_ENDPOINTS;
export const isBatchEndpoint = (url: unknown): url is BatchEndpoint =>
  typeof url === 'string' && Object.hasOwn(BATCH_ENDPOINTS, url);

/**
 * OpenAI's codes where it has one (`invalid_json_line`, `duplicate_custom_id`, `url_mismatch`,
 * `empty_file`, `too_many_tasks`), and for the rest `missing_required_parameter`, `invalid_url`
 * and `invalid_request` with `param` naming the field.
 */
export type BatchInputErrorCode =
  | 'empty_file'
  | 'too_many_tasks'
  | 'invalid_json_line'
  | 'missing_required_parameter'
  | 'duplicate_custom_id'
  | 'invalid_url'
  | 'url_mismatch'
  | 'invalid_request';

/** One entry of a batch's `errors.data`. */
export interface BatchInputError {
  code: BatchInputErrorCode;
  message: string;
  /** The field at fault: `custom_id`, `method`, `url`, `body.messages.0.role`, …; null for the line or file. */
  param: string | null;
  /** Line number in the file, from 1 (empty lines counted); null for the file as a whole. */
  line: number | null;
}

/** A line that passed: the request as its route's schema parsed it (defaults filled in). */
export type BatchRequest =
  | {
      custom_id: string;
      method: 'POST';
      url: '/v1/chat/completions';
      body: z.infer<typeof ChatCompletionRequest>;
    }
  | { custom_id: string; method: 'POST'; url: '/v1/completions'; body: z.infer<typeof CompletionRequest> };

export interface BatchInputOptions {
  /** The batch's `endpoint`: a line with another `url` is `url_mismatch`. Absent: either. */
  endpoint?: BatchEndpoint;
  /** BATCH_MAX_REQUESTS. */
  maxRequests: number;
  /** Errors listed; the rest are only counted (default 100). */
  maxErrors?: number;
  /** The longest line, bytes: BODY_LIMIT_BYTES, the largest body the endpoint itself takes. */
  maxLineBytes?: number;
}

export interface BatchInputSummary {
  /** Request lines (empty lines are not requests). */
  requests: number;
  /** The first `maxErrors` errors, in line order. */
  errors: BatchInputError[];
  /** Every error found, listed or not. */
  errorCount: number;
  /** The models the valid lines name, sorted (a request naming none goes to DEFAULT_MODEL). */
  models: string[];
}

/** The longest `custom_id`: the file's ids are held to find duplicates, so each is bounded. */
export const MAX_CUSTOM_ID_LENGTH = 512;
const DEFAULT_MAX_ERRORS = 100;

/** One line → its request, or why not. Pure: the duplicate check is the caller's (BatchInputCheck). */
export function parseBatchLine(
  text: string,
  line: number,
  opts: Pick<BatchInputOptions, 'endpoint' | 'maxLineBytes'> = {},
): { request: BatchRequest } | { error: BatchInputError } {
  const fail = (code: BatchInputErrorCode, message: string, param: string | null = null) => ({
    error: { code, message, param, line },
  });
  if (opts.maxLineBytes !== undefined && text.length > opts.maxLineBytes / 3) {
    const bytes = Buffer.byteLength(text);
    if (bytes > opts.maxLineBytes) {
      return fail(
        'invalid_request',
        `This line is ${bytes} bytes, over the ${opts.maxLineBytes}-byte limit of one request.`,
      );
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return fail('invalid_json_line', `This line is not parseable as valid JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return fail('invalid_json_line', 'This line is not a JSON object.');
  }
  if (nestsTooDeep(value)) return fail('invalid_json_line', 'This line nests too deep.');
  const o = value as Record<string, unknown>;
  for (const field of ['custom_id', 'method', 'url', 'body'] as const) {
    if (o[field] === undefined) {
      return fail('missing_required_parameter', `Missing required parameter: '${field}'.`, field);
    }
  }
  const customId = o.custom_id;
  if (typeof customId !== 'string' || customId === '' || customId.length > MAX_CUSTOM_ID_LENGTH) {
    return fail(
      'invalid_request',
      `custom_id must be a non-empty string of at most ${MAX_CUSTOM_ID_LENGTH} characters.`,
      'custom_id',
    );
  }
  if (o.method !== 'POST') {
    return fail(
      'invalid_request',
      `method must be 'POST', got ${JSON.stringify(o.method).slice(0, 40)}.`,
      'method',
    );
  }
  const url = o.url;
  if (!isBatchEndpoint(url)) {
    return fail(
      'invalid_url',
      `url must be one of ${Object.keys(BATCH_ENDPOINTS).join(', ')}; got ${JSON.stringify(url).slice(0, 80)}.`,
      'url',
    );
  }
  if (opts.endpoint !== undefined && url !== opts.endpoint) {
    return fail(
      'url_mismatch',
      `The url ${url} of this request does not match the batch's endpoint ${opts.endpoint}.`,
      'url',
    );
  }
  if (o.body === null || typeof o.body !== 'object' || Array.isArray(o.body)) {
    return fail('invalid_request', 'body must be a JSON object: the request body of the endpoint.', 'body');
  }
  const parsed = BATCH_ENDPOINTS[url].safeParse(o.body);
  if (!parsed.success) {
    const { param, message } = firstIssue(parsed.error);
    return fail('invalid_request', `body.${message}`, param === undefined ? 'body' : `body.${param}`);
  }
  // generate()'s rule for every endpoint, beside the schema: a conversation of empty messages.
  if (
    url === '/v1/chat/completions' &&
    (parsed.data as { messages: ChatMessage[] }).messages.every(isEmptyMessage)
  ) {
    return fail('invalid_request', 'body.messages: every message is empty', 'body.messages');
  }
  return { request: { custom_id: customId, method: 'POST', url, body: parsed.data } as BatchRequest };
}

/**
 * The whole file, line by line: every line checked as {@link parseBatchLine} does, `custom_id`s
 * unique across the file, the request count within `maxRequests`, not empty. Feed it the lines
 * in order (an async reader can: it keeps only the ids seen and the errors listed).
 */
export class BatchInputCheck {
  private readonly seen = new Map<string, number>();
  private readonly models = new Set<string>();
  private readonly errors: BatchInputError[] = [];
  private errorCount = 0;
  private requests = 0;
  private line = 0;
  private readonly maxErrors: number;

  constructor(private readonly opts: BatchInputOptions) {
    this.maxErrors = opts.maxErrors ?? DEFAULT_MAX_ERRORS;
  }

  /** The file's next line (its number is the count of lines fed so far). */
  add(text: string): void {
    const line = ++this.line;
    if (text.trim() === '') return;
    if (++this.requests > this.opts.maxRequests) {
      // Said once; the lines past the limit are not checked.
      if (this.requests === this.opts.maxRequests + 1) {
        this.error({
          code: 'too_many_tasks',
          message: `The file has more than ${this.opts.maxRequests} requests, the limit of one batch.`,
          param: null,
          line,
        });
      }
      return;
    }
    const result = parseBatchLine(text, line, this.opts);
    if ('error' in result) {
      // A line that fails on other grounds still claims its custom_id, if it has a usable one.
      const id = customIdOf(text, result.error);
      if (id !== undefined && !this.seen.has(id)) this.seen.set(id, line);
      this.error(result.error);
      return;
    }
    const { custom_id: id, body } = result.request;
    const first = this.seen.get(id);
    if (first !== undefined) {
      this.error({
        code: 'duplicate_custom_id',
        message: `The custom_id ${JSON.stringify(id)} is a duplicate of line ${first}'s: custom_id must be unique in the file.`,
        param: 'custom_id',
        line,
      });
      return;
    }
    this.seen.set(id, line);
    if (body.model !== undefined) this.models.add(body.model);
  }

  result(): BatchInputSummary {
    const errors = [...this.errors];
    let errorCount = this.errorCount;
    if (this.requests === 0) {
      errorCount++;
      if (errors.length < this.maxErrors) {
        errors.push({ code: 'empty_file', message: 'The file has no requests.', param: null, line: null });
      }
    }
    return { requests: this.requests, errors, errorCount, models: [...this.models].sort() };
  }

  private error(e: BatchInputError): void {
    this.errorCount++;
    if (this.errors.length < this.maxErrors) this.errors.push(e);
  }
}

/** The whole file's lines at once. */
export function validateBatchInput(lines: Iterable<string>, opts: BatchInputOptions): BatchInputSummary {
  const check = new BatchInputCheck(opts);
  for (const line of lines) check.add(line);
  return check.result();
}

/** The custom_id of a line refused for another reason, when it has a valid one. */
function customIdOf(text: string, error: BatchInputError): string | undefined {
  if (error.code === 'invalid_json_line' || error.param === 'custom_id' || error.param === null)
    return undefined;
  try {
    const id = (JSON.parse(text) as { custom_id?: unknown }).custom_id;
    return typeof id === 'string' && id !== '' && id.length <= MAX_CUSTOM_ID_LENGTH ? id : undefined;
  } catch {
    return undefined;
  }
}
