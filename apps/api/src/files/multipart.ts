/**
 * A streaming reader of `multipart/form-data` (RFC 7578, with the framing of RFC 2046 §5.1.1),
 * so that `POST /v1/files` stores a 200 MB upload as it arrives instead of holding it in memory
 * (a web `formData()` reads the whole body first). It is fed the body chunk by chunk and returns
 * what each chunk completes; it keeps at most one chunk and a delimiter's length of it.
 */

export type MultipartEvent =
  /** A part begins: its form field name, and its filename if it is a file. */
  | { type: 'part'; name: string; filename?: string; contentType?: string }
  /** The next piece of the current part's content (a view of the chunk it came in). */
  | { type: 'data'; data: Buffer }
  /** The current part is complete. */
  | { type: 'end' };

/** The body is not a well-formed form (the upload answers 400). */
export class MultipartError extends Error {
  override name = 'MultipartError';
}

/**
 * The boundary of a `multipart/form-data` Content-Type (`; boundary=…`, quoted or not), or
 * undefined for another type or a missing or invalid boundary (1–70 characters, RFC 2046).
 */
export function boundaryOf(contentType: string | undefined): string | undefined {
  if (!contentType) return undefined;
  const [type, ...params] = splitParams(contentType);
  if (type?.trim().toLowerCase() !== 'multipart/form-data') return undefined;
  const boundary = params.find((p) => p.name === 'boundary')?.value;
  return boundary !== undefined && boundary.length >= 1 && boundary.length <= 70 ? boundary : undefined;
}

const CRLF = Buffer.from('\r\n');
const HEADERS_END = Buffer.from('\r\n\r\n');
const DASH = 0x2d;

type State = 'preamble' | 'delimiter' | 'headers' | 'body' | 'done';

export class MultipartReader {
  /** `CRLF--boundary`: what ends a part (and, read from a virtual CRLF, the preamble). */
  private readonly delimiter: Buffer;
  private state: State = 'preamble';
  /** Bytes not yet consumed; starts with the CRLF the first delimiter may lack. */
  private pending: Buffer = CRLF;

  constructor(
    boundary: string,
    /** The most header bytes one part may have. */
    private readonly maxHeaderBytes = 16 * 1024,
  ) {
    this.delimiter = Buffer.from(`\r\n--${boundary}`);
  }

  /** True once the closing delimiter was read (what follows it is ignored). */
  get done(): boolean {
    return this.state === 'done';
  }

  /** Feeds the next chunk; returns the events it completes, in order. Throws {@link MultipartError}. */
  write(chunk: Uint8Array): MultipartEvent[] {
    if (this.state === 'done') return [];
    this.pending =
      this.pending.length === 0
        ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
        : Buffer.concat([this.pending, chunk]);
    const events: MultipartEvent[] = [];
    while (this.step(events));
    return events;
  }

  /** The body ended: throws unless the form was complete. */
  end(): void {
    if (this.state !== 'done') throw new MultipartError('the form ends before its closing boundary');
  }

  /** Consumes what it can of `pending` in the current state; false when it needs more bytes. */
  private step(events: MultipartEvent[]): boolean {
    const buf = this.pending;
    switch (this.state) {
      case 'preamble': {
        const at = buf.indexOf(this.delimiter);
        if (at === -1) {
          this.pending = buf.subarray(Math.max(0, buf.length - this.delimiter.length + 1));
          return false;
        }
        this.pending = buf.subarray(at + this.delimiter.length);
        this.state = 'delimiter';
        return true;
      }
      case 'delimiter': {
        // After a delimiter: `--` closes the form; else optional white space, then CRLF.
        if (buf.length < 2) return false;
        if (buf[0] === DASH && buf[1] === DASH) {
          this.state = 'done';
          this.pending = Buffer.alloc(0);
          return false;
        }
        const eol = buf.indexOf(CRLF);
        if (eol === -1) {
          if (buf.length > 256) throw new MultipartError('a boundary line does not end');
          return false;
        }
        if (!/^[ \t]*$/.test(buf.subarray(0, eol).toString('latin1'))) {
          throw new MultipartError('a boundary is followed by something other than a line end');
        }
        this.pending = buf.subarray(eol + 2);
        this.state = 'headers';
        return true;
      }
      case 'headers': {
        // A part with no header line at all starts with the blank line itself.
        const end = buf.subarray(0, 2).equals(CRLF) ? 0 : buf.indexOf(HEADERS_END);
        if (end === -1) {
          if (buf.length > this.maxHeaderBytes) {
            throw new MultipartError(`a part's headers exceed ${this.maxHeaderBytes} bytes`);
          }
          return false;
        }
        if (end > this.maxHeaderBytes) {
          throw new MultipartError(`a part's headers exceed ${this.maxHeaderBytes} bytes`);
        }
        events.push(partOf(buf.subarray(0, end).toString('utf8')));
        this.pending = buf.subarray(end === 0 ? 2 : end + HEADERS_END.length);
        this.state = 'body';
        return true;
      }
      case 'body': {
        const at = buf.indexOf(this.delimiter);
        if (at === -1) {
          // The end of the buffer may be the start of a delimiter: keep that much.
          const safe = buf.length - this.delimiter.length + 1;
          if (safe > 0) {
            events.push({ type: 'data', data: buf.subarray(0, safe) });
            this.pending = buf.subarray(safe);
          }
          return false;
        }
        if (at > 0) events.push({ type: 'data', data: buf.subarray(0, at) });
        events.push({ type: 'end' });
        this.pending = buf.subarray(at + this.delimiter.length);
        this.state = 'delimiter';
        return true;
      }
      case 'done':
        return false;
    }
  }
}

/** A part's header block → its `part` event; it must have `Content-Disposition: form-data; name=…`. */
function partOf(block: string): Extract<MultipartEvent, { type: 'part' }> {
  let disposition: string | undefined;
  let contentType: string | undefined;
  for (const line of block.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon === -1) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (name === 'content-disposition') disposition = line.slice(colon + 1);
    else if (name === 'content-type') contentType = line.slice(colon + 1).trim();
  }
  if (disposition === undefined) throw new MultipartError('a part has no Content-Disposition header');
  const [kind, ...params] = splitParams(disposition);
  const name = params.find((p) => p.name === 'name')?.value;
  if (kind?.trim().toLowerCase() !== 'form-data' || name === undefined) {
    throw new MultipartError('a part is not `Content-Disposition: form-data` with a name');
  }
  // RFC 7578 §4.2: filename* (RFC 5987) is not to be used, but some clients send it; it wins.
  const extended = params.find((p) => p.name === 'filename*')?.value;
  const filename =
    (extended !== undefined ? decodeExtended(extended) : undefined) ??
    params.find((p) => p.name === 'filename')?.value;
  return {
    type: 'part',
    name,
    ...(filename !== undefined && { filename }),
    ...(contentType !== undefined && { contentType }),
  };
}

/** `value; a=1; b="x;y"` → the value, then each parameter (names lower-cased, quotes removed). */
function splitParams(header: string): [string | undefined, ...{ name: string; value: string }[]] {
  const semi = header.indexOf(';');
  const head = semi === -1 ? header : header.slice(0, semi);
  const params: { name: string; value: string }[] = [];
  const re = /;\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/g;
  for (const m of (semi === -1 ? '' : header.slice(semi)).matchAll(re)) {
    const raw = m[2]!.trim();
    const value = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw;
    params.push({ name: m[1]!.toLowerCase(), value });
  }
  return [head, ...params];
}

/** `UTF-8''%E2%82%AC.jsonl` (RFC 5987) → `€.jsonl`; undefined if it cannot be read. */
function decodeExtended(value: string): string | undefined {
  const m = /^([\w!#$%&+^`{}~-]+)'[^']*'(.*)$/.exec(value);
  if (!m || m[1]!.toLowerCase() !== 'utf-8') return undefined;
  try {
    return decodeURIComponent(m[2]!);
  } catch {
    return undefined;
  }
}
