import { z } from 'zod';
import { ERROR_STATUS, type ErrorCode } from './codes.ts';

/**
 * The error bodies and stream error frames that render.ts builds, one per wire format, as the
 * OpenAPI document (openapi/) states them and the live tests check them. Each is loose: an
 * error's `details` (`queue_depth`, `limit`, `window`, `waiting`, …) add fields of their own.
 */
const codes = Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]];
const ErrorCodeSchema = z
  .enum(codes)
  .meta({ description: 'the gateway error code (docs/api.md, the error table)' });
const requestId = z.string().meta({ description: 'the request id, also sent as X-Request-ID' });

/** `/chat` and every path outside `/v1`: `{"error":"<code>","message","param"?,"request_id",…details}`. */
export const SeedErrorBody = z
  .looseObject({
    error: ErrorCodeSchema,
    message: z.string(),
    param: z.string().optional(),
    request_id: requestId,
  })
  .meta({ id: 'SeedError', description: 'an error on /chat, the health routes and outside /v1' });

/** `/v1/*` but `/v1/messages`: OpenAI's `{"error":{"message","type","param","code"}}`. */
export const OpenAIErrorBody = z
  .object({
    error: z.looseObject({
      message: z.string(),
      type: z.enum([
        'invalid_request_error',
        'authentication_error',
        'permission_error',
        'not_found_error',
        'rate_limit_error',
        'insufficient_quota',
        'server_error',
      ]),
      param: z.string().nullable(),
      code: z.union([ErrorCodeSchema, z.literal('insufficient_quota')]),
      request_id: requestId,
    }),
  })
  .meta({ id: 'OpenAIError', description: "an error on /v1 (but /v1/messages), in OpenAI's shape" });

/** `/v1/messages…`: Anthropic's `{"type":"error","error":{"type","message"},"request_id"}`. */
export const AnthropicErrorBody = z
  .object({
    type: z.literal('error'),
    error: z.looseObject({
      type: z.enum([
        'invalid_request_error',
        'authentication_error',
        'permission_error',
        'not_found_error',
        'request_too_large',
        'rate_limit_error',
        'api_error',
        'overloaded_error',
      ]),
      message: z.string(),
      code: ErrorCodeSchema,
    }),
    request_id: requestId,
  })
  .meta({ id: 'AnthropicError', description: "an error on /v1/messages, in Anthropic's shape" });

/** The frame that ends a failed `/chat` stream: `data: {"error":{"type","code","message","request_id"}}`. */
export const SeedErrorFrame = z
  .object({
    error: z.object({
      type: ErrorCodeSchema,
      code: ErrorCodeSchema,
      message: z.string(),
      request_id: requestId,
    }),
  })
  .meta({ id: 'SeedErrorFrame', description: 'the last frame of a /chat stream that failed' });
