/** Client-side helpers for the tests: what a plain HTTP client sees, with arrival times. */

export interface SseEvent {
  event: string | null;
  data: string;
  /** `performance.now()` when the event arrived. */
  at: number;
}

export interface SseRead {
  events: SseEvent[];
  /** Set when the body ended abnormally (connection cut, abort). */
  error: unknown;
}

export function post(url: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    ...(signal && { signal }),
  });
}

/** Reads a whole event stream; `onEvent` returning true stops reading (and cancels the body). */
export async function readSse(
  res: Response,
  onEvent?: (e: SseEvent) => boolean | undefined,
): Promise<SseRead> {
  const events: SseEvent[] = [];
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let sep = buffer.indexOf('\n\n');
      while (sep !== -1) {
        const block = buffer.slice(0, sep);
        buffer = buffer.slice(sep + 2);
        sep = buffer.indexOf('\n\n');
        let event: string | null = null;
        let data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data = line.slice(6);
        }
        const e = { event, data, at: performance.now() };
        events.push(e);
        if (onEvent?.(e)) {
          await reader.cancel();
          return { events, error: undefined };
        }
      }
    }
  } catch (error) {
    return { events, error };
  }
  return { events, error: undefined };
}

export interface ChatChunk {
  id: string;
  object: string;
  created: number;
  model: string;
  choices: {
    index: number;
    delta: { role?: string; content?: string };
    logprobs: null;
    finish_reason: string | null;
    stop_reason?: string | null;
  }[];
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
}

/** The JSON chunks of an OpenAI stream, without `[DONE]`. */
export const chunksOf = (read: SseRead): ChatChunk[] =>
  read.events.filter((e) => e.data !== '[DONE]').map((e) => JSON.parse(e.data) as ChatChunk);

/** Concatenated `delta.content` of an OpenAI stream. */
export const contentOf = (chunks: ChatChunk[]): string =>
  chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');

/** Polls until `check` returns true; fails with `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
