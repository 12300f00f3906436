import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';

/**
 * Checks real HTTP answers against an OpenAPI 3.1 document: the status is one the operation
 * lists, the content type one that status lists, and the body valid against that content's
 * schema (JSON Schema 2020-12, the document's own dialect, with its components). A Server-Sent
 * Events answer is checked frame by frame: each `data:` (parsed as JSON, or the literal text
 * when it is not JSON, like `[DONE]`) against the schema, and an `event:` name against the
 * frame's `type` when both are there (Anthropic's events).
 */

/** The parts of a document the checker reads. */
export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, OperationDoc | undefined> | undefined>;
  components?: { schemas?: Record<string, unknown> };
}

interface OperationDoc {
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> } | undefined>;
}

/** One answer as the checker takes it (read whole: a stream has ended). */
export interface Answer {
  status: number;
  contentType: string | null;
  body: string;
}

export interface CheckedAnswer {
  method: string;
  /** The document's path template that matched, e.g. `/v1/jobs/{id}`. */
  path: string;
  status: number;
  contentType: string;
  /** Frames checked (SSE), 0 for a JSON body. */
  frames: number;
}

export class OpenApiMismatch extends Error {
  override name = 'OpenApiMismatch';
}

interface SseFrame {
  event?: string;
  data: string;
}

/** The frames of an SSE body: `event:` and `data:` lines up to a blank line; comments skipped. */
export function parseSse(text: string): SseFrame[] {
  const frames: SseFrame[] = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith('event:')) event = line.slice(6).trimStart();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (data.length > 0) frames.push({ ...(event !== undefined && { event }), data: data.join('\n') });
  }
  return frames;
}

const escapePointer = (s: string) => s.replaceAll('~', '~0').replaceAll('/', '~1');
const mediaType = (contentType: string | null) => (contentType ?? '').split(';')[0]!.trim().toLowerCase();

export class OpenApiChecker {
  private readonly ajv: Ajv2020;
  private readonly validators = new Map<string, ValidateFunction>();
  /** Every answer checked so far (for coverage: which operations and statuses were seen). */
  readonly checked: CheckedAnswer[] = [];

  constructor(readonly doc: OpenApiDocument) {
    if (!doc.openapi.startsWith('3.1')) throw new Error(`not an OpenAPI 3.1 document: ${doc.openapi}`);
    // The document itself is the schema registry: every schema in it is reached by a JSON pointer
    // (`openapi#/paths/…`), and its own `#/components/schemas/…` refs resolve inside it.
    // strict: false, since OpenAPI keywords (discriminator, example, …) are not JSON Schema's.
    this.ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
    this.ajv.addSchema(doc as object, 'openapi');
  }

  /** The document's path template for a concrete path, e.g. `/v1/models/a/b` → `/v1/models/{id}`. */
  templateOf(path: string): string | undefined {
    const templates = Object.keys(this.doc.paths);
    if (templates.includes(path)) return path;
    // A parameter is one segment, except a last one, which may take the rest (model ids have `/`).
    const match = (last: boolean) =>
      templates.find((t) => {
        const pattern = t
          .split('/')
          .map((seg, i, all) => {
            if (!/^\{[^}]+\}$/.test(seg)) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
            return last && i === all.length - 1 ? '.+' : '[^/]+';
          })
          .join('/');
        return new RegExp(`^${pattern}$`).test(path);
      });
    return match(false) ?? match(true);
  }

  /** A validator for the schema at `pointer` in the document (compiled once). */
  schemaAt(pointer: string): ValidateFunction {
    let v = this.validators.get(pointer);
    if (!v) {
      v = this.ajv.compile({ $ref: `openapi#${pointer}` });
      this.validators.set(pointer, v);
    }
    return v;
  }

  /** A validator for a component schema, e.g. `SeedError`. */
  component(name: string): ValidateFunction {
    return this.schemaAt(`/components/schemas/${escapePointer(name)}`);
  }

  /**
   * Checks `answer` to `method path` against the document; throws {@link OpenApiMismatch} naming
   * every way it differs.
   */
  check(method: string, path: string, answer: Answer): CheckedAnswer {
    const template = this.templateOf(path);
    const m = method.toLowerCase();
    const where = `${method.toUpperCase()} ${path}`;
    if (template === undefined) throw new OpenApiMismatch(`${where}: no such path in the document`);
    const op = this.doc.paths[template]?.[m];
    if (!op) throw new OpenApiMismatch(`${where}: the document has no ${m} operation on ${template}`);
    const status = String(answer.status);
    const response = op.responses?.[status] ?? op.responses?.default;
    if (!response) {
      throw new OpenApiMismatch(
        `${where}: status ${status} is not documented (documented: ${Object.keys(op.responses ?? {}).join(', ')})`,
      );
    }
    const type = mediaType(answer.contentType);
    const content = response.content ?? {};
    if (!(type in content)) {
      throw new OpenApiMismatch(
        `${where} ${status}: content type '${type}' is not documented (documented: ${Object.keys(content).join(', ') || 'none'})`,
      );
    }
    const pointer = `/paths/${escapePointer(template)}/${m}/responses/${status}/content/${escapePointer(type)}/schema`;
    const frames = this.validateBody(`${where} ${status}`, this.schemaAt(pointer), type, answer.body);
    const checked = { method: m, path: template, status: answer.status, contentType: type, frames };
    this.checked.push(checked);
    return checked;
  }

  /** Checks a JSON or SSE body against one validator; returns the number of SSE frames checked. */
  validateBody(where: string, validate: ValidateFunction, type: string, body: string): number {
    if (type === 'text/event-stream') {
      const frames = parseSse(body);
      if (frames.length === 0) throw new OpenApiMismatch(`${where}: an event stream without a data frame`);
      frames.forEach((f, i) => {
        const value = parseData(f.data);
        this.assertValid(`${where}, frame ${i} (${f.data.slice(0, 200)})`, validate, value);
        const frameType = (value as { type?: unknown } | null)?.type;
        if (f.event !== undefined && typeof frameType === 'string' && frameType !== f.event) {
          throw new OpenApiMismatch(
            `${where}, frame ${i}: event '${f.event}' carries data of type '${frameType}'`,
          );
        }
      });
      return frames.length;
    }
    if (type === 'application/json') {
      let value: unknown;
      try {
        value = JSON.parse(body);
      } catch {
        throw new OpenApiMismatch(`${where}: the body is not JSON: ${body.slice(0, 200)}`);
      }
      this.assertValid(where, validate, value);
      return 0;
    }
    // Other types (text/html): only a string schema can say anything about them.
    this.assertValid(where, validate, body);
    return 0;
  }

  private assertValid(where: string, validate: ValidateFunction, value: unknown): void {
    if (validate(value)) return;
    const errors = (validate.errors ?? [])
      .slice(0, 8)
      .map(
        (e) => `${e.instancePath || '/'} ${e.message ?? ''}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`,
      )
      .join('; ');
    throw new OpenApiMismatch(`${where}: the body does not match the document: ${errors}`);
  }

  /** fetch()'s answer, read whole and checked. */
  async checkResponse(
    method: string,
    path: string,
    res: Response,
  ): Promise<CheckedAnswer & { body: string }> {
    const body = await res.text();
    const checked = this.check(method, path, {
      status: res.status,
      contentType: res.headers.get('content-type'),
      body,
    });
    return { ...checked, body };
  }
}

function parseData(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return data;
  }
}
