import { type ContentWithResolver, type DescribeRouteOptions, resolver } from 'hono-openapi';
import { z } from 'zod';
import {
  AnthropicErrorBody,
  ERROR_STATUS,
  type ErrorCode,
  type ErrorStyle,
  OpenAIErrorBody,
  SeedErrorBody,
} from '../errors/index.ts';
import { acceptedInput } from './input-doc.ts';

/**
 * What a route file needs to describe itself to the OpenAPI document (routes/openapi.ts), beside its
 * registration: `describeRoute({ requestBody: jsonRequest(Schema), responses: {...} })` from
 * hono-openapi, with the very zod schema that the handler validates with. Request schemas are
 * written as what they accept (zod's `io: 'input'`: a field with a default is optional), response
 * schemas as what is sent (`io: 'output'`: no field beyond those listed).
 */
type Io = 'input' | 'output';
type Parameter = Exclude<NonNullable<DescribeRouteOptions['parameters']>[number], { $ref: string }>;
type SecurityRequirement = NonNullable<DescribeRouteOptions['security']>[number];
// Spelled out: the inferred types name openapi-types, which a declaration file cannot reach.
type RequestBody = NonNullable<DescribeRouteOptions['requestBody']>;
type Responses = NonNullable<DescribeRouteOptions['responses']>;
interface Header {
  description: string;
  schema: { type: 'string' };
}

type OverrideContext = Parameters<NonNullable<z.core.ToJSONSchemaParams['override']>>[0];

function overrideFor(io: Io) {
  const override = (ctx: OverrideContext) => {
    const documented = io === 'input' ? acceptedInput(ctx.zodSchema) : undefined;
    if (!documented) return;
    const { $schema: _, ...js } = z.toJSONSchema(documented, { io, unrepresentable: 'any', override });
    for (const key of Object.keys(ctx.jsonSchema)) delete (ctx.jsonSchema as Record<string, unknown>)[key];
    Object.assign(ctx.jsonSchema, js);
  };
  return override;
}

const optionsFor = (io: Io) => ({
  options: { io, unrepresentable: 'any' as const, override: overrideFor(io) },
});
const schemaOf = (schema: z.ZodType, io: Io) => resolver(schema, optionsFor(io));

/** A JSON request body, documented from the schema that validates it. */
export function jsonRequest(schema: z.ZodType, description?: string): RequestBody {
  return {
    required: true,
    ...(description && { description }),
    content: { 'application/json': { schema: schemaOf(schema, 'input') } },
  };
}

/** A `multipart/form-data` request body, documented from the schema of its fields. */
export function formRequest(schema: z.ZodType, description?: string): RequestBody {
  return {
    required: true,
    ...(description && { description }),
    content: { 'multipart/form-data': { schema: schemaOf(schema, 'input') } },
  };
}

/** A JSON answer. */
export function json(schema: z.ZodType): ContentWithResolver {
  return { 'application/json': { schema: schemaOf(schema, 'output') } };
}

/**
 * A Server-Sent Events answer. OpenAPI 3.1 has no type for a stream: the schema is that of one
 * frame's `data:` (parsed as JSON, or the literal `[DONE]`), as the description says.
 */
export function eventStream(frame: z.ZodType): ContentWithResolver {
  return { 'text/event-stream': { schema: schemaOf(frame, 'output') } };
}

export const SSE_DESCRIPTION =
  'With `stream: true`: `text/event-stream`. Each frame is `id: <n>` (its number in the stream, from 0, for `Last-Event-ID`), ' +
  'an optional `event:` line and one `data:` line; the schema is that of the `data:` (JSON, or the literal `[DONE]`). ' +
  'Comment lines (`: queued position=N`) may come between frames.';

const stringHeader = (description: string): Header => ({ description, schema: { type: 'string' } });
const requestIdHeader = stringHeader('the request id (an inbound X-Request-Id is reused)');
const retryAfterHeader = stringHeader('whole seconds to wait before retrying');

/** The error body of each wire format (errors/render.ts), by the path's style (errorStyleFor). */
export const ERROR_BODY: Record<ErrorStyle, z.ZodType> = {
  seed: SeedErrorBody,
  openai: OpenAIErrorBody,
  anthropic: AnthropicErrorBody,
};

/** The error codes of a status, from the error table (errors/codes.ts). */
export const codesOf = (status: number): ErrorCode[] =>
  (Object.entries(ERROR_STATUS) as [ErrorCode, number][]).filter(([, s]) => s === status).map(([c]) => c);

/** Error answers of `statuses` in one family's body: each with its codes, request id and Retry-After. */
export function errorResponses(style: ErrorStyle, statuses: readonly number[]): Responses {
  return Object.fromEntries(
    statuses.map((status) => [
      String(status),
      {
        description: codesOf(status)
          .map((c) => `\`${c}\``)
          .join(', '),
        headers: {
          'X-Request-ID': requestIdHeader,
          ...((status === 409 || status === 429 || status === 503) && { 'Retry-After': retryAfterHeader }),
        },
        content: json(ERROR_BODY[style]),
      },
    ]),
  );
}

/** Statuses every route behind the API key guard may answer (authentication, rate limit, Redis). */
export const GUARDED = [401, 429, 500, 503] as const;

/** The API key, as `Authorization: Bearer` or `x-api-key` (routes/openapi.ts names the schemes). */
export const API_KEY_SECURITY: SecurityRequirement[] = [{ bearer: [] }, { xApiKey: [] }];

export const idempotencyKeyHeader: Parameter = {
  in: 'header',
  name: 'Idempotency-Key',
  required: false,
  description:
    'a retry with the same key attaches to the job of the first try (replayed, then followed) instead of starting another generation',
  schema: { type: 'string', maxLength: 255 },
};

export const preferHeader = (preferences: string): Parameter => ({
  in: 'header',
  name: 'Prefer',
  required: false,
  description: `RFC 7240 preferences: ${preferences}`,
  schema: { type: 'string' },
});

/** What every generation endpoint may refuse or fail with (docs/api.md, the error table). */
export const GENERATION_ERRORS = [
  400, 401, 403, 404, 409, 410, 413, 422, 429, 499, 500, 502, 503, 504,
] as const;

/**
 * The answers of a generation endpoint: its body (`stream: false`) or its stream, 202 with a job
 * when it honours `Prefer: respond-async`, and its family's errors.
 */
export function generationResponses(
  style: ErrorStyle,
  answer: { body: z.ZodType; frame: z.ZodType; accepted?: z.ZodType },
): Responses {
  return {
    200: {
      description: `The answer: one JSON body, or (stream: true) Server-Sent Events. ${SSE_DESCRIPTION}`,
      headers: { 'X-Request-ID': requestIdHeader, 'X-Job-ID': stringHeader('the job') },
      content: { ...json(answer.body), ...eventStream(answer.frame) },
    },
    ...(answer.accepted && {
      202: {
        description: '`Prefer: respond-async`: the job, queued; `Location` is /v1/jobs/{id}',
        headers: {
          Location: stringHeader('the job: /v1/jobs/{id}'),
          'X-Request-ID': requestIdHeader,
        },
        content: json(answer.accepted),
      },
    }),
    ...errorResponses(style, GENERATION_ERRORS),
  };
}

/** The headers a generation request may send besides its key. */
export const generationHeaders = (asyncToo: boolean): Parameter[] => [
  idempotencyKeyHeader,
  preferHeader(
    asyncToo
      ? '`resumable` (the job outlives a dropped connection, RESUME_GRACE_MS), `respond-async` (202 at once)'
      : '`resumable` (the job outlives a dropped connection, RESUME_GRACE_MS)',
  ),
];
