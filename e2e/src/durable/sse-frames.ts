/** One SSE frame as a client sees it: its id, event name, data, and its exact text. */
export interface Frame {
  id: number | undefined;
  event: string | undefined;
  data: string;
  raw: string;
}

export interface ReadFrames {
  status: number;
  headers: Headers;
  frames: Frame[];
  /** The body as received (frames and comment lines). */
  text: string;
  /** True when `stopAfter` cut the stream (the client disconnected, or stopped reading). */
  cut: boolean;
  /** Closes the connection (`keepOpen`: left open when the stream was cut). */
  close(): void;
}

/**
 * Reads an SSE response frame by frame (comment lines are kept in `text`, not in `frames`);
 * with `stopAfter`, disconnects once that many frames arrived, as a client that stops; with
 * `keepOpen` too, it stops reading but keeps the connection, for a test that makes the gateway
 * lose it (an api killed under an open stream). `onFrame` sees each frame as it arrives.
 */
export async function readFrames(
  url: string,
  init: RequestInit & { stopAfter?: number; keepOpen?: boolean; onFrame?: (f: Frame) => void } = {},
): Promise<ReadFrames> {
  const abort = new AbortController();
  const res = await fetch(url, { ...init, signal: abort.signal });
  const out: ReadFrames = {
    status: res.status,
    headers: res.headers,
    frames: [],
    text: '',
    cut: false,
    close: () => abort.abort(),
  };
  if (!res.body || !String(res.headers.get('content-type')).startsWith('text/event-stream')) {
    out.text = await res.text();
    return out;
  }
  const decoder = new TextDecoder();
  // A reader, not `for await`: leaving a for-await loop cancels the body, which closes the
  // connection, and `keepOpen` must not (the client stops reading, it does not leave).
  const reader = res.body.getReader();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value as Uint8Array, { stream: true });
      let end = buf.indexOf('\n\n');
      while (end !== -1) {
        const raw = buf.slice(0, end + 2);
        buf = buf.slice(end + 2);
        out.text += raw;
        if (!raw.startsWith(':')) {
          const frame = parse(raw);
          out.frames.push(frame);
          init.onFrame?.(frame);
        }
        if (init.stopAfter !== undefined && out.frames.length >= init.stopAfter) {
          out.cut = true;
          if (!init.keepOpen) abort.abort();
          return out;
        }
        end = buf.indexOf('\n\n');
      }
    }
  } catch (err) {
    if (!out.cut) throw err;
  }
  return out;
}

function parse(raw: string): Frame {
  let id: number | undefined;
  let event: string | undefined;
  const data: string[] = [];
  for (const line of raw.split('\n')) {
    if (line.startsWith('id: ')) id = Number(line.slice(4));
    else if (line.startsWith('event: ')) event = line.slice(7);
    else if (line.startsWith('data: ')) data.push(line.slice(6));
  }
  return { id, event, data: data.join('\n'), raw };
}

/** The text of an OpenAI chat stream (content deltas in order). */
export function chatText(frames: readonly Frame[]): string {
  let text = '';
  for (const f of frames) {
    if (f.data === '[DONE]' || f.data === '') continue;
    const chunk = JSON.parse(f.data) as { choices?: { delta?: { content?: string } }[] };
    text += chunk.choices?.[0]?.delta?.content ?? '';
  }
  return text;
}
