import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Route } from './context.ts';
import type { GenerationResult, GenerationSink } from './engine.ts';
import { SimError, sendJson } from './errors.ts';
import { FAULT_HEADER, throwIfErrorFault } from './faults.ts';
import { readJsonBody } from './http-body.ts';
import { randomHex, SSE_HEADERS, unixSeconds } from './sse.ts';
import { contentText, estimatePromptTokens, promptHash } from './text.ts';

const contentPart = z.object({ type: z.string(), text: z.string().optional() });

const maxTokens = z.number().int().min(1).nullish();

/** The fields the simulator reads; sampling parameters (temperature, top_p, …) are accepted and ignored. */
export const chatCompletionRequestSchema = z.object({
  model: z.string(),
  messages: z
    .array(z.object({ role: z.string(), content: z.union([z.string(), z.array(contentPart)]).nullish() }))
    .min(1),
  max_tokens: maxTokens,
  max_completion_tokens: maxTokens,
  stop: z.union([z.string(), z.array(z.string())]).nullish(),
  seed: z.number().int().nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  ignore_eos: z.boolean().nullish(),
  n: z.number().int().nullish(),
});

export type ChatCompletionRequest = z.output<typeof chatCompletionRequestSchema>;

interface Reply {
  id: string;
  created: number;
  model: string;
  promptTokens: number;
}

const usage = (reply: Reply, r: GenerationResult) =>
  `{"prompt_tokens":${reply.promptTokens},"total_tokens":${reply.promptTokens + r.completionTokens},"completion_tokens":${r.completionTokens}}`;

/**
 * vLLM's chunk stream. Every chunk but the content is serialized once per request, so a token
 * costs one string concatenation and one `res.write`.
 */
function streamSink(res: ServerResponse, reply: Reply, includeUsage: boolean): GenerationSink {
  const usageNull = includeUsage ? ',"usage":null' : '';
  const head = `data: {"id":"${reply.id}","object":"chat.completion.chunk","created":${reply.created},"model":${JSON.stringify(reply.model)},"choices":[`;
  const tokenHead = `${head}{"index":0,"delta":{"content":`;
  const tokenTail = `},"logprobs":null,"finish_reason":null}]${usageNull}}\n\n`;
  res.writeHead(200, SSE_HEADERS);
  res.write(
    `${head}{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]${usageNull}}\n\n`,
  );
  return {
    token(text) {
      res.write(tokenHead + JSON.stringify(text) + tokenTail);
    },
    finish(r) {
      let out = `${head}{"index":0,"delta":{"content":${JSON.stringify(r.tail)}},"logprobs":null,"finish_reason":"${r.finishReason}","stop_reason":${JSON.stringify(r.stopSequence)}}]${usageNull}}\n\n`;
      if (includeUsage) out += `${head}],"usage":${usage(reply, r)}}\n\n`;
      res.end(`${out}data: [DONE]\n\n`);
    },
    drop() {
      res.destroy();
    },
  };
}

function jsonSink(res: ServerResponse, reply: Reply): GenerationSink {
  return {
    token() {},
    finish(r) {
      sendJson(res, 200, {
        id: reply.id,
        object: 'chat.completion',
        created: reply.created,
        model: reply.model,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: r.text, tool_calls: [] },
            logprobs: null,
            finish_reason: r.finishReason,
            stop_reason: r.stopSequence,
          },
        ],
        usage: {
          prompt_tokens: reply.promptTokens,
          total_tokens: reply.promptTokens + r.completionTokens,
          completion_tokens: r.completionTokens,
        },
      });
    },
    drop() {
      res.destroy();
    },
  };
}

/** `POST /v1/chat/completions` as vLLM's OpenAI-compatible server answers it. */
export const chatCompletionsRoute: Route = {
  method: 'POST',
  path: '/v1/chat/completions',
  errorFormat: 'openai',
  async handle(ctx, req, res, arrival) {
    ctx.stats.requests++;
    const body = await readJsonBody(req, chatCompletionRequestSchema);
    if (!ctx.options.models.includes(body.model)) {
      throw new SimError('not_found', `The model \`${body.model}\` does not exist.`, { param: 'model' });
    }
    if (body.n !== undefined && body.n !== null && body.n !== 1) {
      throw new SimError('bad_request', 'Only n=1 is supported by the simulator.', { param: 'n' });
    }
    if (body.stream_options && !body.stream) {
      throw new SimError('bad_request', 'Stream options can only be defined when `stream=True`.');
    }
    const parts = body.messages.map((m) => ({ role: m.role, text: contentText(m.content) }));
    const stop = (typeof body.stop === 'string' ? [body.stop] : (body.stop ?? [])).filter(
      (s) => s.length > 0,
    );
    const promptTokens = estimatePromptTokens(parts);
    const generation = ctx.engine.prepare({
      arrival,
      promptTokens,
      hash: promptHash(parts, body.seed),
      maxTokens: body.max_completion_tokens ?? body.max_tokens ?? null,
      ignoreEos: body.ignore_eos === true,
      stop,
    });

    const fault = ctx.faults.pick(req.headers[FAULT_HEADER]);
    throwIfErrorFault(fault);
    if (fault === 'timeout') return ctx.engine.hang(res);

    const reply: Reply = {
      id: `chatcmpl-${randomHex()}`,
      created: unixSeconds(),
      model: body.model,
      promptTokens,
    };
    const sink = body.stream
      ? streamSink(res, reply, body.stream_options?.include_usage === true)
      : jsonSink(res, reply);
    ctx.engine.run(res, generation, sink, fault === 'drop');
  },
};
