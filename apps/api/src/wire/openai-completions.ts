import type { Delta, DoneEvent, Transcript } from '@llmgw/protocol';
import { z } from 'zod';
import { errorFrame, OpenAIErrorBody } from '../errors/index.ts';
import { DoneFrame, type FrameFormat, OpenAIUsage, openAIObject, openAIUsage } from './frames.ts';
import type { ChunkIdentity } from './openai-chat.ts';

/** Legacy logprobs: parallel arrays, alternatives as `{token: logprob}`, offsets into the text. */
const LegacyLogprobsBody = z.object({
  tokens: z.array(z.string()),
  token_logprobs: z.array(z.number().nullable()),
  top_logprobs: z.array(z.record(z.string(), z.number())),
  text_offset: z.array(z.number().int()),
});

const completionChoice = (finish: z.ZodType) =>
  z.object({
    index: z.number().int(),
    text: z.string(),
    logprobs: LegacyLogprobsBody.nullable(),
    finish_reason: finish,
    stop_reason: z.string().nullable(),
  });

/** One `text_completion` chunk, as {@link openAICompletionFrames} writes it. */
export const TextCompletionChunk = z
  .object({
    ...openAIObject('text_completion'),
    choices: z.array(completionChoice(z.string().nullable())),
    usage: OpenAIUsage.nullable().optional(),
  })
  .meta({ id: 'TextCompletionChunk' });

/** The data of one `/v1/completions` frame: a chunk, then `[DONE]` or an error. */
export const TextCompletionFrame = z
  .union([TextCompletionChunk, OpenAIErrorBody, DoneFrame])
  .meta({ id: 'TextCompletionFrame' });

/** The non-streaming `text_completion`. */
export const TextCompletion = z
  .object({
    ...openAIObject('text_completion'),
    choices: z.array(completionChoice(z.string())),
    usage: OpenAIUsage,
  })
  .meta({ id: 'TextCompletion' });

interface TokenLogprob {
  token: string;
  logprob: number | null;
  top_logprobs?: { token: string; logprob: number }[];
}

/**
 * Chat-style logprobs entries (what events carry) in the legacy completions shape:
 * parallel arrays, alternatives as `{token: logprob}`, offsets into the whole text.
 */
export class LegacyLogprobs {
  private offset = 0;

  render(entries: readonly unknown[]) {
    const tokens: string[] = [];
    const tokenLogprobs: (number | null)[] = [];
    const top: Record<string, number>[] = [];
    const offsets: number[] = [];
    for (const raw of entries as TokenLogprob[]) {
      tokens.push(raw.token);
      tokenLogprobs.push(raw.logprob);
      top.push(Object.fromEntries((raw.top_logprobs ?? []).map((a) => [a.token, a.logprob])));
      offsets.push(this.offset);
      this.offset += raw.token.length;
    }
    return { tokens, token_logprobs: tokenLogprobs, top_logprobs: top, text_offset: offsets };
  }

  advance(text: string): void {
    this.offset += text.length;
  }
}

/**
 * `/v1/completions` chunks as vLLM streams them (`object: "text_completion"`, `choices[].text`).
 * A completion has only text; other deltas cannot occur (no tools, no chat template).
 */
export function openAICompletionFrames(
  idn: ChunkIdentity,
  includeUsage: boolean,
  requestId: string,
): FrameFormat {
  const head = `data: {"id":${JSON.stringify(idn.id)},"object":"text_completion","created":${idn.created},"model":${JSON.stringify(idn.model)},"choices":[`;
  const usageTail = includeUsage ? ',"usage":null' : '';
  const lp = new LegacyLogprobs();
  return {
    open: () => '',
    deltas: (deltas: readonly Delta[]) => {
      let out = '';
      for (const d of deltas) {
        if (d.k !== 'text') continue;
        let logprobs = 'null';
        if (d.lp) logprobs = JSON.stringify(lp.render(d.lp));
        else lp.advance(d.t);
        out += `${head}{"index":0,"text":${JSON.stringify(d.t)},"logprobs":${logprobs},"finish_reason":null,"stop_reason":null}]${usageTail}}\n\n`;
      }
      return out;
    },
    done: (ev: DoneEvent) => {
      let out = `${head}{"index":0,"text":"","logprobs":null,"finish_reason":${JSON.stringify(ev.finishReason)},"stop_reason":${JSON.stringify(ev.stopSequence ?? null)}}]${usageTail}}\n\n`;
      if (includeUsage) out += `${head}],"usage":${JSON.stringify(openAIUsage(ev.usage))}}\n\n`;
      return `${out}data: [DONE]\n\n`;
    },
    error: (err) => errorFrame(err, 'openai', requestId),
  };
}

export function openAICompletionBody(
  idn: ChunkIdentity,
  t: Transcript,
  done: DoneEvent,
): z.input<typeof TextCompletion> {
  return {
    id: idn.id,
    object: 'text_completion',
    created: idn.created,
    model: idn.model,
    choices: [
      {
        index: 0,
        text: t.text,
        logprobs: t.logprobs ? new LegacyLogprobs().render(t.logprobs) : null,
        finish_reason: done.finishReason,
        stop_reason: done.stopSequence ?? null,
      },
    ],
    usage: openAIUsage(done.usage),
  };
}
