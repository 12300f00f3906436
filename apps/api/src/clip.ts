/** Longest piece of client input quoted in an error message or a log line. */
export const CLIP_CHARS = 128;

/**
 * Client input (a model name, a path, an id) as it may appear in a message or a log line: at
 * most {@link CLIP_CHARS} characters, cut ones marked with `…`. A 10 KB model name must not make
 * a 10 KB error body or log line per request.
 */
export function clip(text: string, max = CLIP_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}
