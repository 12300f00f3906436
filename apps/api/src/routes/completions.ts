import { describeRoute } from 'hono-openapi';
import { z } from 'zod';
import type { GatewayApp } from '../hono-app.ts';
import { readJsonBody } from '../middleware/json-body.ts';
import {
  API_KEY_SECURITY,
  generationHeaders,
  generationResponses,
  jsonRequest,
} from '../openapi/describe.ts';
import { TextCompletion, TextCompletionFrame } from '../wire/openai-completions.ts';
import { refineSampling, SamplingFields, samplingParams } from '../wire/openai-request.ts';
import { type GenerationDeps, generate, type RouteInput } from './generation.ts';

/** OpenAI's (and vLLM's) default length of a legacy completion. */
const DEFAULT_COMPLETION_MAX_TOKENS = 16;

/**
 * `POST /v1/completions`: legacy text completions, as vLLM serves them (the Kubernetes Gateway
 * API Inference Extension's model-server protocol requires this endpoint). One prompt per
 * request: a batch of prompts is n generations, refused like `n > 1`.
 */
export const CompletionRequest = z
  .object({
    ...SamplingFields,
    prompt: z.union([
      z.string(),
      z
        .array(z.string())
        .min(1)
        .max(
          1,
          'a batch of prompts is not supported: each request is one queued generation; send one request per prompt',
        ),
    ]),
    logprobs: z.number().int().min(0).max(5).nullable().optional(),
    echo: z.boolean().nullable().optional(),
    suffix: z.null().optional(),
    best_of: z
      .number()
      .int()
      .max(1, 'best_of > 1 is not supported: each request is one queued generation')
      .nullable()
      .optional(),
  })
  .superRefine((req, ctx) => {
    refineSampling(req, ctx);
    if ((typeof req.prompt === 'string' ? req.prompt : req.prompt[0]) === '') {
      ctx.addIssue({ code: 'custom', path: ['prompt'], message: 'must not be empty' });
    }
  })
  .meta({ id: 'CompletionRequest' });

export type CompletionRequest = z.infer<typeof CompletionRequest>;

/** A request's generation, for the route and the batches API alike (see chatInput). */
export function completionInput(body: CompletionRequest): Omit<RouteInput, 'answer'> {
  return {
    kind: 'completion',
    model: body.model,
    messages: [],
    prompt: typeof body.prompt === 'string' ? body.prompt : body.prompt[0]!,
    params: {
      ...samplingParams(body, body.max_tokens ?? DEFAULT_COMPLETION_MAX_TOKENS),
      ...(body.logprobs != null && { logprobs: true, top_logprobs: body.logprobs }),
      ...(body.echo != null && { echo: body.echo }),
    },
  };
}

export function registerCompletions(app: GatewayApp, deps: GenerationDeps): void {
  const doc = describeRoute({
    tags: ['generation'],
    summary: 'OpenAI legacy text completions, one prompt per request',
    security: API_KEY_SECURITY,
    parameters: generationHeaders(false),
    requestBody: jsonRequest(CompletionRequest),
    responses: generationResponses('openai', { body: TextCompletion, frame: TextCompletionFrame }),
  });
  app.post('/v1/completions', doc, async (c) => {
    const body = await readJsonBody(c, CompletionRequest);
    return generate(
      c,
      deps,
      {
        ...completionInput(body),
        answer: {
          f: 'completion',
          stream: body.stream === true,
          usage: body.stream_options?.include_usage === true,
        },
      },
      body,
    );
  });
}
