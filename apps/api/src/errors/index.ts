/**
 * The api's errors, in one place: codes and their statuses (codes.ts), the error handlers throw
 * (api-error.ts), its body and stream frame per wire format (render.ts), and the Hono handlers
 * that turn it into a response (handler.ts); the bodies and frames as zod schemas (schemas.ts), for
 * the OpenAPI document.
 */
export { ApiError, type ApiErrorOptions, apiErrorFromJob } from './api-error.ts';
export { ERROR_STATUS, type ErrorCode, RETRY_AFTER_S } from './codes.ts';
export { notFoundHandler, onErrorHandler, renderError } from './handler.ts';
export { type ErrorStyle, errorBody, errorFrame, errorStyleFor, rawErrorResponse } from './render.ts';
export { AnthropicErrorBody, OpenAIErrorBody, SeedErrorBody, SeedErrorFrame } from './schemas.ts';
