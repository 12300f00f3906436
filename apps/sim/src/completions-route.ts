import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Route } from './context.ts';
import type { GenerationResult, GenerationSink } from './engine.ts';
import { SimError, sendJson } from './errors.ts';
import { FAULT_HEADER, throwIfErrorFault } from './faults.ts';
import { readJsonBody } from './http-body.ts';
import { emptyLegacyLogprobs, type LegacyLogprobs, pushLegacyLogprob } from './logprobs.ts';
import { streamOptions } from './openai-request.ts';
import { chunkUsage, openAIUsage, randomHex, SSE_HEADERS, unixSeconds } from './sse.ts';
import { estimateTextTokens, promptHash } from './text.ts';

/** vLLM's default for `/v1/completions` (chat has none): absent = 16, explicit null = no limit. */
const DEFAULT_MAX_TOKENS = 16;

/** The fields of the legacy Completions API the simulator reads; sampling parameters are ignored. */
export const completionRequestSchema = z.object({
  model: z.string(),
  prompt: z.union([z.string(), z.array(z.string())]),
  max_tokens: z.number().int().min(1).nullable().optional(),
  stop: z.union([z.string(), z.array(z.string())]).nullish(),
  seed: z.number().int().nullish(),
  stream: z.boolean().nullish(),
  stream_options: streamOptions,
  ignore_eos: z.boolean().nullish(),
  n: z.number().int().nullish(),
  logprobs: z.number().int().min(0).max(5).nullish(),
  echo: z.boolean().nullish(),
});

export type CompletionRequest = z.output<typeof completionRequestSchema>;

interface Reply {
  id: string;
  created: number;
  model: string;
  promptTokens: number;
  hash: number;
  /** Prepended to the text with `echo: true`, else ''. */
  echo: string;
  /** `logprobs` (number of top candidates) or null. */
  logprobs: number | null;
}

const usage = (reply: Reply, r: GenerationResult) =>
  JSON.stringify(openAIUsage(reply.promptTokens, r.completionTokens));

/**
 * Logprobs of the answer tokens, collected as they are generated; `take()` hands over those not
 * sent yet (null when there are none, like chat). Offsets count from the start of the returned
 * text, so an echoed prompt shifts them.
 */
class LegacyLogprobCollector {
  private pending = emptyLegacyLogprobs();
  private index = 0;

  constructor(
    private readonly reply: Reply,
    private offset: number,
  ) {}

  push(token: string): void {
    if (this.reply.logprobs === null) return;
    pushLegacyLogprob(this.pending, this.reply.hash, this.index++, token, this.reply.logprobs, this.offset);
    this.offset += token.length;
  }

  take(): LegacyLogprobs | null {
    if (this.reply.logprobs === null || this.pending.tokens.length === 0) return null;
    const out = this.pending;
    this.pending = emptyLegacyLogprobs();
    return out;
  }
}

/**
 * vLLM's `text_completion` chunks; the echoed prompt rides with the first text sent. With
 * `continuous` (vLLM's `continuous_usage_stats`), every chunk carries the usage so far.
 */
function streamSink(
  res: ServerResponse,
  reply: Reply,
  includeUsage: boolean,
  continuous = false,
): GenerationSink {
  let generated = 0;
  const usageField = chunkUsage(includeUsage, continuous, reply.promptTokens);
  const usageNow = () => usageField.now(generated);
  const head = `data: {"id":"${reply.id}","object":"text_completion","created":${reply.created},"model":${JSON.stringify(reply.model)},"choices":[`;
  const logprobs = new LegacyLogprobCollector(reply, reply.echo.length);
  let echo = reply.echo;
  const text = (t: string) => {
    const out = JSON.stringify(echo + t);
    echo = '';
    return out;
  };
  res.writeHead(200, SSE_HEADERS);
  // Nothing is written before the first token; the client should see the 200 at once, as from vLLM.
  res.flushHeaders();
  return {
    reasoning() {},
    token(t, token) {
      generated++;
      logprobs.push(token);
      if (t === '') return;
      res.write(
        `${head}{"index":0,"text":${text(t)},"logprobs":${JSON.stringify(logprobs.take())},"finish_reason":null,"stop_reason":null}]${usageNow()}}\n\n`,
      );
    },
    toolCall() {},
    finish(r) {
      generated = r.completionTokens;
      let out = `${head}{"index":0,"text":${text(r.tail)},"logprobs":${JSON.stringify(logprobs.take())},"finish_reason":"${r.finishReason}","stop_reason":${JSON.stringify(r.stopSequence)}}]${usageNow()}}\n\n`;
      if (includeUsage) out += `${head}],"usage":${usage(reply, r)}}\n\n`;
      res.end(`${out}data: [DONE]\n\n`);
    },
    drop() {
      res.destroy();
    },
  };
}

function jsonSink(res: ServerResponse, reply: Reply): GenerationSink {
  const logprobs = new LegacyLogprobCollector(reply, reply.echo.length);
  return {
    reasoning() {},
    token(_t, token) {
      logprobs.push(token);
    },
    toolCall() {},
    finish(r) {
      sendJson(res, 200, {
        id: reply.id,
        object: 'text_completion',
        created: reply.created,
        model: reply.model,
        choices: [
          {
            index: 0,
            text: reply.echo + r.text,
            logprobs: reply.logprobs === null ? null : (logprobs.take() ?? emptyLegacyLogprobs()),
            finish_reason: r.finishReason,
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

/** One prompt per request: a batch (an array of several) is not simulated. */
function singlePrompt(prompt: string | string[]): string {
  if (typeof prompt === 'string') return prompt;
  if (prompt.length !== 1) {
    throw new SimError('bad_request', 'The simulator takes exactly one prompt per request.', {
      param: 'prompt',
    });
  }
  return prompt[0]!;
}

const PATH = '/v1/completions';

/** `POST /v1/completions`, the legacy text-completion API vLLM still serves, on the same engine. */
export const completionsRoute: Route = {
  method: 'POST',
  path: PATH,
  errorFormat: 'openai',
  async handle(ctx, req, res, arrival) {
    ctx.stats.requests++;
    const body = await readJsonBody(req, completionRequestSchema, (json) => ctx.requests.record(PATH, json));
    if (!ctx.options.models.includes(body.model)) {
      throw new SimError('not_found', `The model \`${body.model}\` does not exist.`, { param: 'model' });
    }
    if (body.n !== undefined && body.n !== null && body.n !== 1) {
      throw new SimError('bad_request', 'Only n=1 is supported by the simulator.', { param: 'n' });
    }
    if (body.stream_options && !body.stream) {
      throw new SimError('bad_request', 'Stream options can only be defined when `stream=True`.');
    }
    const prompt = singlePrompt(body.prompt);
    const stop = (typeof body.stop === 'string' ? [body.stop] : (body.stop ?? [])).filter(
      (s) => s.length > 0,
    );
    const promptTokens = estimateTextTokens(prompt);
    const hash = promptHash([{ role: 'prompt', text: prompt }], body.seed);
    const generation = ctx.engine.prepare({
      arrival,
      promptTokens,
      hash,
      maxTokens: body.max_tokens === undefined ? DEFAULT_MAX_TOKENS : body.max_tokens,
      ignoreEos: body.ignore_eos === true,
      stop,
      reasoningTokens: 0,
      toolCalls: [],
    });

    const fault = ctx.faults.pick(req.headers[FAULT_HEADER]);
    throwIfErrorFault(fault);
    if (fault === 'timeout') return ctx.engine.hang(res);

    const reply: Reply = {
      id: `cmpl-${randomHex()}`,
      created: unixSeconds(),
      model: body.model,
      promptTokens,
      hash,
      echo: body.echo === true ? prompt : '',
      logprobs: body.logprobs ?? null,
    };
    const sink = body.stream
      ? streamSink(
          res,
          reply,
          body.stream_options?.include_usage === true,
          body.stream_options?.include_usage === true && body.stream_options.continuous_usage_stats === true,
        )
      : jsonSink(res, reply);
    ctx.engine.run(res, generation, sink, fault === 'drop');
  },
};
