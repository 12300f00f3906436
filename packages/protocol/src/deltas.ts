import type { SignedThinking } from './messages.ts';

/**
 * What a generation produces, as typed pieces in the order the backend sent them. One compact
 * JSON object per piece on the reply channel; the api renders them per wire format (seed `/chat`,
 * OpenAI chunks, Anthropic content blocks).
 *
 * - `text`: answer text, with its logprobs entries (OpenAI `choices[].logprobs.content[]`) if asked;
 * - `reasoning`: what a reasoning model thinks before answering (vLLM `reasoning_content` /
 *   `reasoning`, Anthropic `thinking`). From an Anthropic backend, also what proves it: `sig` on
 *   the delta that ends a thinking block (Anthropic's `signature_delta`; its `t` may be empty),
 *   and `redacted`, a whole `redacted_thinking` block (its `data`; `t` empty). Both are optional
 *   fields rather than kinds of their own, so that an api of an older release (its renderers
 *   know only the four kinds) reads such a delta as empty reasoning;
 * - `tool`: one fragment of a tool call, keyed by `i` (the call's index in this answer). The
 *   first fragment of a call has `id` and `name`; later ones only `args` pieces;
 * - `refusal`: OpenAI's refusal text.
 */
export type Delta =
  | { k: 'text'; t: string; lp?: unknown[] }
  | { k: 'reasoning'; t: string; sig?: string; redacted?: string }
  | { k: 'tool'; i: number; id?: string; name?: string; args?: string }
  | { k: 'refusal'; t: string };

export type DeltaKind = Delta['k'];

/**
 * Appends `d` to `out`, merged into the last delta when they are neighbours of the same kind
 * (the same tool call, for fragments): text is concatenated, order is never changed. A signed
 * reasoning delta ends its thinking block, and a redacted one is a block of its own: neither
 * takes later reasoning in.
 */
export function pushDelta(out: Delta[], d: Delta): void {
  const last = out[out.length - 1];
  if (last && last.k === d.k) {
    switch (d.k) {
      case 'text': {
        const l = last as Extract<Delta, { k: 'text' }>;
        l.t += d.t;
        if (d.lp) l.lp = l.lp ? l.lp.concat(d.lp) : d.lp;
        return;
      }
      case 'reasoning': {
        const l = last as Extract<Delta, { k: 'reasoning' }>;
        if (l.sig !== undefined || l.redacted !== undefined || d.redacted !== undefined) break;
        l.t += d.t;
        if (d.sig !== undefined) l.sig = d.sig;
        return;
      }
      case 'refusal':
        (last as { t: string }).t += d.t;
        return;
      case 'tool': {
        const l = last as Extract<Delta, { k: 'tool' }>;
        // A fragment with an id starts a new call; only continuations of the same call merge.
        if (l.i === d.i && d.id === undefined) {
          if (d.name) l.name = (l.name ?? '') + d.name;
          if (d.args) l.args = (l.args ?? '') + d.args;
          return;
        }
        break;
      }
    }
  }
  out.push({ ...d });
}

/** A tool call as a complete answer carries it (OpenAI `message.tool_calls[]`). */
export interface AssembledToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** One thinking block of an answer; `signature` is '' when the backend gave none (not Anthropic). */
export type AssembledThinking =
  | { type: 'thinking'; thinking: string; signature: string }
  | Extract<SignedThinking, { type: 'redacted_thinking' }>;

/** A whole answer assembled from its deltas (non-streaming responses). */
export class Transcript {
  text = '';
  /** All the reasoning text, whatever its blocks. */
  reasoning = '';
  refusal = '';
  logprobs: unknown[] | undefined;
  /** The reasoning as thinking blocks, in order: a new one after each signature. */
  readonly thinking: AssembledThinking[] = [];
  private openThinking: Extract<AssembledThinking, { type: 'thinking' }> | undefined;
  private readonly calls = new Map<number, AssembledToolCall>();

  add(deltas: readonly Delta[]): void {
    for (const d of deltas) {
      switch (d.k) {
        case 'text':
          this.text += d.t;
          if (d.lp) this.logprobs = (this.logprobs ?? []).concat(d.lp);
          break;
        case 'reasoning':
          this.addReasoning(d);
          break;
        case 'refusal':
          this.refusal += d.t;
          break;
        case 'tool': {
          let call = this.calls.get(d.i);
          if (!call) {
            call = { id: d.id ?? `call_${d.i}`, type: 'function', function: { name: '', arguments: '' } };
            this.calls.set(d.i, call);
          }
          if (d.id !== undefined) call.id = d.id;
          if (d.name) call.function.name += d.name;
          if (d.args) call.function.arguments += d.args;
          break;
        }
      }
    }
  }

  private addReasoning(d: Extract<Delta, { k: 'reasoning' }>): void {
    this.reasoning += d.t;
    if (d.redacted !== undefined) {
      this.thinking.push({ type: 'redacted_thinking', data: d.redacted });
      this.openThinking = undefined;
      return;
    }
    if (d.t === '' && d.sig === undefined) return;
    let block = this.openThinking;
    if (!block) {
      block = { type: 'thinking', thinking: '', signature: '' };
      this.thinking.push(block);
      this.openThinking = block;
    }
    block.thinking += d.t;
    if (d.sig !== undefined) {
      block.signature = d.sig;
      this.openThinking = undefined;
    }
  }

  /** Tool calls in index order; empty when the answer has none. */
  get toolCalls(): AssembledToolCall[] {
    return [...this.calls.entries()].sort(([a], [b]) => a - b).map(([, c]) => c);
  }
}
