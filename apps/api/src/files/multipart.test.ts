import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { boundaryOf, MultipartError, type MultipartEvent, MultipartReader } from './multipart.ts';

/** A form as Node's own fetch (undici, what the openai SDK sends with) serializes it. */
async function serialize(form: FormData): Promise<{ body: Buffer; boundary: string }> {
  const req = new Request('http://x/', { method: 'POST', body: form });
  const boundary = boundaryOf(req.headers.get('content-type') ?? '');
  if (!boundary) throw new Error('no boundary');
  return { body: Buffer.from(await req.arrayBuffer()), boundary };
}

interface ReadPart {
  name: string;
  filename?: string;
  contentType?: string;
  data: Buffer;
}

/** Feeds `body` in pieces of `size` bytes; the parts, their content joined. */
function readAll(body: Buffer, boundary: string, size: number): ReadPart[] {
  const reader = new MultipartReader(boundary);
  const parts: ReadPart[] = [];
  let open: { part: ReadPart; pieces: Buffer[] } | undefined;
  const apply = (ev: MultipartEvent) => {
    if (ev.type === 'part') {
      expect(open).toBeUndefined();
      const { type: _, ...head } = ev;
      open = { part: { ...head, data: Buffer.alloc(0) }, pieces: [] };
    } else if (ev.type === 'data') {
      // Copied as the upload does: a view is only read before the next write.
      open!.pieces.push(Buffer.from(ev.data));
    } else {
      parts.push({ ...open!.part, data: Buffer.concat(open!.pieces) });
      open = undefined;
    }
  };
  for (let i = 0; i < body.length; i += size) reader.write(body.subarray(i, i + size)).forEach(apply);
  reader.end();
  return parts;
}

describe('MultipartReader', () => {
  it('reads what fetch serializes, byte for byte, whatever the chunk sizes', async () => {
    // Content with CRLFs, dashes and a near-boundary, to tempt a wrong match.
    const content = Buffer.concat([
      Buffer.from('{"custom_id":"a"}\r\n--\r\n\r\n-'),
      randomBytes(3000),
      Buffer.from('\r\n--'),
    ]);
    const form = new FormData();
    form.append('purpose', 'batch');
    form.append('file', new Blob([content], { type: 'application/jsonl' }), 'in "put" €.jsonl');
    form.append('note', '');
    const { body, boundary } = await serialize(form);
    const expected = readAll(body, boundary, body.length);
    expect(expected.map((p) => p.name)).toEqual(['purpose', 'file', 'note']);
    expect(expected[0]!.data.toString()).toBe('batch');
    expect(expected[1]!.data.equals(content)).toBe(true);
    expect(expected[1]!.contentType).toBe('application/jsonl');
    // undici percent-encodes the quotes of a filename (the HTML spec's form encoding).
    expect(expected[1]!.filename).toBe('in %22put%22 €.jsonl');
    expect(expected[2]!.data).toHaveLength(0);
    for (const size of [1, 2, 3, 5, 7, 13, 64, 100, 1000, 4096]) {
      expect(readAll(body, boundary, size)).toEqual(expected);
    }
  });

  it('takes a preamble, LWSP after a boundary, quoted parameters, filename*, and ignores the epilogue', () => {
    const b = 'xYz';
    const body = Buffer.from(
      'ignored preamble\r\n' +
        `--${b}  \r\n` +
        'Content-Disposition: form-data; name="a;b"; filename*=UTF-8\'\'%E2%82%AC.jsonl; filename="fallback"\r\n' +
        '\r\n' +
        'one\r\n' +
        `--${b}\r\n` +
        'content-disposition: FORM-DATA; NAME=purpose\r\n' +
        '\r\n' +
        'batch\r\n' +
        `--${b}--\r\n` +
        'epilogue, even --xYz',
    );
    const parts = readAll(body, b, 3);
    expect(parts).toEqual([
      { name: 'a;b', filename: '€.jsonl', data: Buffer.from('one') },
      { name: 'purpose', data: Buffer.from('batch') },
    ]);
  });

  it('refuses what is not a form: no closing boundary, a part without its name, huge headers', () => {
    const cut = new MultipartReader('b');
    cut.write(Buffer.from('--b\r\nContent-Disposition: form-data; name="file"\r\n\r\nhalf a file'));
    expect(() => cut.end()).toThrow(MultipartError);

    expect(() =>
      new MultipartReader('b').write(Buffer.from('--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--')),
    ).toThrow(/no Content-Disposition/);
    expect(() =>
      new MultipartReader('b').write(Buffer.from('--b\r\nContent-Disposition: attachment\r\n\r\nx\r\n--b--')),
    ).toThrow(/form-data/);
    expect(() => new MultipartReader('b').write(Buffer.from(`--b\r\nX: ${'a'.repeat(20_000)}`))).toThrow(
      /headers exceed/,
    );
    expect(() => new MultipartReader('b').write(Buffer.from('--b junk\r\n'))).toThrow(/line end/);
  });
});

describe('boundaryOf', () => {
  it('reads the boundary of multipart/form-data only', () => {
    expect(boundaryOf('multipart/form-data; boundary=abc')).toBe('abc');
    expect(boundaryOf('Multipart/Form-Data; charset=utf-8; boundary="a b:c"')).toBe('a b:c');
    expect(boundaryOf('multipart/mixed; boundary=abc')).toBeUndefined();
    expect(boundaryOf('multipart/form-data')).toBeUndefined();
    expect(boundaryOf(`multipart/form-data; boundary=${'x'.repeat(71)}`)).toBeUndefined();
    expect(boundaryOf('application/json')).toBeUndefined();
    expect(boundaryOf(undefined)).toBeUndefined();
  });
});
