import type { ServerResponse } from 'node:http';
import type { Route } from './context.ts';
import type { GenerationResult, GenerationSink } from './engine.ts';
import { SimError, sendJson } from './errors.ts';
import { FAULT_HEADER, throwIfErrorFault } from './faults.ts';
import { readJsonBody } from './http-body.ts';
import { type ChatLogprob, chatLogprob } from './logprobs.ts';
import {
  type ChatCompletionRequest,
  chatCompletionRequestSchema,
  chatPromptParts,
  chatReasons,
  chatStructuredOutput,
  chatToolChoice,
} from './openai-request.ts';
import type { ReasoningField } from './options.ts';
import { chunkUsage, openAIUsage, randomHex, SSE_HEADERS, unixSeconds } from './sse.ts';
import { estimatePromptTokens, promptHash } from './text.ts';
import { planToolCalls } from './tool-calls.ts';

export { type ChatCompletionRequest, chatCompletionRequestSchema } from './openai-request.ts';

interface Reply {
  id: string;
  created: number;
  model: string;
  promptTokens: number;
  hash: number;
  /** `top_logprobs` when `logprobs: true`, else null. */
  logprobs: number | null;
  reasoningField: ReasoningField;
  /** SIM_EXTRA_DELTA_FIELD: an unrelayable field in the first chunk ('' = none). */
  extraDeltaField: string;
  /** The answer is tool calls: a complete one finishes with `tool_calls`. */
  tools: boolean;
}

const usage = (reply: Reply, r: GenerationResult) =>
  JSON.stringify(openAIUsage(reply.promptTokens, r.completionTokens));

/** vLLM rewrites a finished tool-call answer's `stop` to `tool_calls`; a cut one stays `length`. */
const finishReason = (reply: Reply, r: GenerationResult) =>
  reply.tools && r.finishReason === 'stop' ? 'tool_calls' : r.finishReason;

/** The JSON members of a reasoning delta (or message), under the configured field name(s). */
function reasoningMembers(field: ReasoningField, json: string): string {
  if (field === 'both') return `"reasoning_content":${json},"reasoning":${json}`;
  return `"${field}":${json}`;
}

/**
 * vLLM's chunk stream. Every chunk but the content is serialized once per request, so a token
 * costs one string concatenation and one `res.write`. With logprobs, a content chunk carries the
 * entries of every answer token generated since the previous content chunk (tokens held back
 * for stop strings ride with the next one, the rest with the final chunk). With `continuous`
 * (vLLM's `continuous_usage_stats`), every chunk carries the usage so far instead of `null`.
 */
function streamSink(
  res: ServerResponse,
  reply: Reply,
  includeUsage: boolean,
  continuous = false,
): GenerationSink {
  let generated = 0;
  const usageField = chunkUsage(includeUsage, continuous, reply.promptTokens);
  const usageNull = usageField.none;
  const usageNow = () => usageField.now(generated);
  const head = `data: {"id":"${reply.id}","object":"chat.completion.chunk","created":${reply.created},"model":${JSON.stringify(reply.model)},"choices":[`;
  const deltaHead = `${head}{"index":0,"delta":{`;
  const tokenHead = `${deltaHead}"content":`;
  const fixedTail = `},"logprobs":null,"finish_reason":null}]${usageNull}}\n\n`;
  const tail = () => (continuous ? `},"logprobs":null,"finish_reason":null}]${usageNow()}}\n\n` : fixedTail);
  const pending: ChatLogprob[] = [];
  let index = 0;
  const logprobsJson = () => {
    if (pending.length === 0) return 'null';
    const json = `{"content":${JSON.stringify(pending)}}`;
    pending.length = 0;
    return json;
  };
  res.writeHead(200, SSE_HEADERS);
  const extra = reply.extraDeltaField ? `,"${reply.extraDeltaField}":{"id":"sim"}` : '';
  res.write(
    `${head}{"index":0,"delta":{"role":"assistant","content":""${extra}},"logprobs":null,"finish_reason":null}]${usageNow()}}\n\n`,
  );
  return {
    reasoning(text) {
      generated++;
      res.write(deltaHead + reasoningMembers(reply.reasoningField, JSON.stringify(text)) + tail());
    },
    token(text, token) {
      generated++;
      if (reply.logprobs === null) {
        if (text !== '') res.write(tokenHead + JSON.stringify(text) + tail());
        return;
      }
      pending.push(chatLogprob(reply.hash, index++, token, reply.logprobs));
      if (text === '') return;
      res.write(
        `${tokenHead}${JSON.stringify(text)}},"logprobs":${logprobsJson()},"finish_reason":null}]${usageNow()}}\n\n`,
      );
    },
    toolCall(i, call, piece, first) {
      generated++;
      let out = '';
      if (first) {
        const header = JSON.stringify({
          index: i,
          id: call.id,
          type: 'function',
          function: { name: call.name, arguments: '' },
        });
        out = `${deltaHead}"tool_calls":[${header}]${tail()}`;
      }
      const args = `{"index":${i},"function":{"arguments":${JSON.stringify(piece)}}}`;
      res.write(`${out}${deltaHead}"tool_calls":[${args}]${tail()}`);
    },
    finish(r) {
      generated = r.completionTokens;
      let out = `${head}{"index":0,"delta":{"content":${JSON.stringify(r.tail)}},"logprobs":${logprobsJson()},"finish_reason":"${finishReason(reply, r)}","stop_reason":${JSON.stringify(r.stopSequence)}}]${usageNow()}}\n\n`;
      if (includeUsage) out += `${head}],"usage":${usage(reply, r)}}\n\n`;
      res.end(`${out}data: [DONE]\n\n`);
    },
    drop() {
      res.destroy();
    },
  };
}

function jsonSink(res: ServerResponse, reply: Reply): GenerationSink {
  const entries: ChatLogprob[] = [];
  return {
    reasoning() {},
    token(_text, token) {
      if (reply.logprobs !== null)
        entries.push(chatLogprob(reply.hash, entries.length, token, reply.logprobs));
    },
    toolCall() {},
    finish(r) {
      const message: Record<string, unknown> = { role: 'assistant' };
      if (reply.tools) {
        // The calls as far as they were generated: a `length` finish cuts the last one's arguments.
        message.content = null;
        message.tool_calls = r.toolCalls.map((c) => ({
          id: c.id,
          type: 'function',
          function: { name: c.name, arguments: c.arguments },
        }));
      } else {
        // Like vLLM's reasoning parsers: no content at all when the budget ran out while reasoning.
        message.content = r.answered ? r.text : null;
        message.tool_calls = [];
      }
      if (r.reasoning !== '') {
        if (reply.reasoningField !== 'reasoning') message.reasoning_content = r.reasoning;
        if (reply.reasoningField !== 'reasoning_content') message.reasoning = r.reasoning;
      }
      sendJson(res, 200, {
        id: reply.id,
        object: 'chat.completion',
        created: reply.created,
        model: reply.model,
        choices: [
          {
            index: 0,
            message,
            logprobs: reply.logprobs === null ? null : { content: entries },
            finish_reason: finishReason(reply, r),
            stop_reason: r.stopSequence,
          },
        ],
        usage: openAIUsage(reply.promptTokens, r.completionTokens),
      });
    },
    drop() {
      res.destroy();
    },
  };
}

function validate(body: ChatCompletionRequest, models: readonly string[]): void {
  if (!models.includes(body.model)) {
    throw new SimError('not_found', `The model \`${body.model}\` does not exist.`, { param: 'model' });
  }
  if (body.n !== undefined && body.n !== null && body.n !== 1) {
    throw new SimError('bad_request', 'Only n=1 is supported by the simulator.', { param: 'n' });
  }
  if (body.stream_options && !body.stream) {
    throw new SimError('bad_request', 'Stream options can only be defined when `stream=True`.');
  }
}

const PATH = '/v1/chat/completions';

/** `POST /v1/chat/completions` as vLLM's OpenAI-compatible server answers it. */
export const chatCompletionsRoute: Route = {
  method: 'POST',
  path: PATH,
  errorFormat: 'openai',
  async handle(ctx, req, res, arrival) {
    ctx.stats.requests++;
    const body = await readJsonBody(req, chatCompletionRequestSchema, (json) =>
      ctx.requests.record(PATH, json),
    );
    validate(body, ctx.options.models);
    const parts = chatPromptParts(body);
    const stop = (typeof body.stop === 'string' ? [body.stop] : (body.stop ?? [])).filter(
      (s) => s.length > 0,
    );
    const promptTokens = estimatePromptTokens(parts);
    const hash = promptHash(parts, body.seed);
    const toolCalls = planToolCalls(chatToolChoice(body), hash, () => `chatcmpl-tool-${randomHex()}`);
    const generation = ctx.engine.prepare({
      arrival,
      promptTokens,
      hash,
      maxTokens: body.max_completion_tokens ?? body.max_tokens ?? null,
      ignoreEos: body.ignore_eos === true,
      stop,
      reasoningTokens: chatReasons(body) ? ctx.options.reasoningTokens : 0,
      toolCalls,
      // Tool calls win over a structured output, as they would on a model offered both.
      json: toolCalls.length > 0 ? null : chatStructuredOutput(body, hash),
    });

    const fault = ctx.faults.pick(req.headers[FAULT_HEADER]);
    throwIfErrorFault(fault);
    if (fault === 'timeout') return ctx.engine.hang(res);

    const reply: Reply = {
      id: `chatcmpl-${randomHex()}`,
      created: unixSeconds(),
      model: body.model,
      promptTokens,
      hash,
      logprobs: body.logprobs === true ? (body.top_logprobs ?? 0) : null,
      reasoningField: ctx.options.reasoningField,
      extraDeltaField: ctx.options.extraDeltaField,
      tools: toolCalls.length > 0,
    };
    const includeUsage = body.stream_options?.include_usage === true;
    const sink = body.stream
      ? streamSink(
          res,
          reply,
          includeUsage,
          includeUsage && body.stream_options?.continuous_usage_stats === true,
        )
      : jsonSink(res, reply);
    ctx.engine.run(res, generation, sink, fault === 'drop');
  },
};
