/**
 * What a generation produces, as typed pieces in the order the backend sent them. One compact
 * JSON object per piece on the reply channel; the api renders them per wire format (seed `/chat`,
 * OpenAI chunks, Anthropic content blocks).
 *
 * - `text`: answer text, with its logprobs entries (OpenAI `choices[].logprobs.content[]`) if asked;
 * - `reasoning`: what a reasoning model thinks before answering (vLLM `reasoning_content` /
 *   `reasoning`, Anthropic `thinking`);
 * - `tool`: one fragment of a tool call, keyed by `i` (the call's index in this answer). The
 *   first fragment of a call has `id` and `name`; later ones only `args` pieces;
 * - `refusal`: OpenAI's refusal text.
 */
export type Delta =
  | { k: 'text'; t: string; lp?: unknown[] }
  | { k: 'reasoning'; t: string }
  | { k: 'tool'; i: number; id?: string; name?: string; args?: string }
  | { k: 'refusal'; t: string };

export type DeltaKind = Delta['k'];

/**
 * Appends `d` to `out`, merged into the last delta when they are neighbours of the same kind
 * (the same tool call, for fragments): text is concatenated, order is never changed.
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
      case 'reasoning':
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

/** A whole answer assembled from its deltas (non-streaming responses). */
export class Transcript {
  text = '';
  reasoning = '';
  refusal = '';
  logprobs: unknown[] | undefined;
  private readonly calls = new Map<number, AssembledToolCall>();

  add(deltas: readonly Delta[]): void {
    for (const d of deltas) {
      switch (d.k) {
        case 'text':
          this.text += d.t;
          if (d.lp) this.logprobs = (this.logprobs ?? []).concat(d.lp);
          break;
        case 'reasoning':
          this.reasoning += d.t;
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

  /** Tool calls in index order; empty when the answer has none. */
  get toolCalls(): AssembledToolCall[] {
    return [...this.calls.entries()].sort(([a], [b]) => a - b).map(([, c]) => c);
  }
}
