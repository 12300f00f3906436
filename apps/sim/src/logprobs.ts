import { fnv1a, WORDS } from './text.ts';

export interface Candidate {
  token: string;
  logprob: number;
}

/** One entry of a chat `top_logprobs` list. */
export interface TopLogprob extends Candidate {
  bytes: number[];
}

/** One entry of a chat chunk's `logprobs.content`. */
export interface ChatLogprob extends TopLogprob {
  top_logprobs: TopLogprob[];
}

/**
 * The `count` most likely tokens at answer position `index`, most likely first: the chosen token
 * (greedy decoding, so it leads), then other words of the vocabulary with its leading space or not.
 * Logprobs are negative multiples of 0.001 derived from the prompt hash and the position, so
 * they print exactly and repeat for the same request.
 */
export function candidates(hash: number, index: number, token: string, count: number): Candidate[] {
  let milli = 1 + (fnv1a(`lp${index}`, hash) % 2000);
  const out: Candidate[] = [{ token, logprob: -milli / 1000 }];
  const space = token.startsWith(' ') ? ' ' : '';
  const seen = new Set([token.trim()]);
  let word = fnv1a(`alt${index}`, hash) % WORDS.length;
  while (out.length < count && seen.size < WORDS.length) {
    const w = WORDS[word]!;
    word = (word + 1) % WORDS.length;
    if (seen.has(w)) continue;
    seen.add(w);
    milli += 250 + (fnv1a(`lp${index}:${out.length}`, hash) % 500);
    out.push({ token: space + w, logprob: -milli / 1000 });
  }
  return out;
}

const utf8 = (token: string): number[] => Array.from(Buffer.from(token, 'utf8'));

/** A chat-format entry (`logprobs: true`, `top_logprobs: top`). */
export function chatLogprob(hash: number, index: number, token: string, top: number): ChatLogprob {
  const list = candidates(hash, index, token, Math.max(1, top));
  const chosen = list[0]!;
  return {
    token,
    logprob: chosen.logprob,
    bytes: utf8(token),
    top_logprobs:
      top === 0 ? [] : list.map((c) => ({ token: c.token, logprob: c.logprob, bytes: utf8(c.token) })),
  };
}

/** The legacy `/v1/completions` format: parallel arrays, top candidates as `{token: logprob}`. */
export interface LegacyLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

export const emptyLegacyLogprobs = (): LegacyLogprobs => ({
  tokens: [],
  token_logprobs: [],
  top_logprobs: [],
  text_offset: [],
});

/**
 * Appends token `index` at character `offset` of the returned text. With `logprobs: N` vLLM's dict
 * holds the top N, which here include the chosen token; with 0, just the chosen one.
 */
export function pushLegacyLogprob(
  into: LegacyLogprobs,
  hash: number,
  index: number,
  token: string,
  top: number,
  offset: number,
): void {
  const list = candidates(hash, index, token, Math.max(1, top));
  into.tokens.push(token);
  into.token_logprobs.push(list[0]!.logprob);
  into.top_logprobs.push(Object.fromEntries(list.map((c) => [c.token, c.logprob])));
  into.text_offset.push(offset);
}
