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

/** An API key's shape (`llmgw_` + base64url): what {@link loggablePath} hides. */
const SECRET = /llmgw_[A-Za-z0-9_-]+/g;

/**
 * A request path as logs and traces may keep it: clipped, and with any API key in it replaced by
 * `llmgw_[redacted]` (`DELETE /admin/keys/<the key itself>` puts one there).
 */
export function loggablePath(path: string): string {
  return clip(path.replace(SECRET, 'llmgw_[redacted]'));
}
