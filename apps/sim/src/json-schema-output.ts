import { fnv1a, TokenSource } from './text.ts';

/**
 * Deterministic JSON values that validate against a JSON schema: the simulator's stand-in for
 * vLLM's guided decoding. One generator serves both structured outputs (`response_format`
 * `json_schema`) and tool-call arguments (see tool-calls.ts).
 *
 * Supported: `type` (also as an array, e.g. `["string","null"]`: the first non-null type), `const`,
 * `enum` (the first value), objects (`properties` in schema order, `required`, `additionalProperties`,
 * `minProperties`), strings (`minLength`/`maxLength`, the usual `format`s), numbers and integers
 * (`minimum`/`maximum`, `exclusiveMinimum`/`exclusiveMaximum`, `multipleOf`), booleans, null, arrays
 * (`items`, `prefixItems` / tuple `items`, `minItems`/`maxItems`, `uniqueItems`), `$ref` as a JSON
 * pointer into the root (`#/$defs/…`, `#/definitions/…`, `#`), `$ref` with sibling keywords,
 * `allOf` (merged), `anyOf`/`oneOf` (one alternative). Not honoured: `pattern`, `not`,
 * `if`/`then`/`else`, `patternProperties`, `dependent*`, `contains`.
 *
 * Recursion (a `$ref` reached again inside itself) is cut short: from there on the smallest valid
 * value is built — only required properties, `minItems` elements, the `null` alternative when there
 * is one — so a recursive schema gives a small, finite value. Beyond {@link MAX_DEPTH} levels of
 * nesting a value is `{}`.
 */

type Schema = Record<string, unknown>;

export const isSchema = (v: unknown): v is Schema => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Beyond this nesting of values, a value is `{}`. */
export const MAX_DEPTH = 8;
/** `$ref` hops without a value in between (a ref to a ref to …): more is a loop. */
const MAX_HOPS = 32;

/** A JSON pointer (`#`, `#/$defs/Name`, URI-encoded, `~0`/`~1` escaped) into `root`. */
function resolvePointer(root: unknown, ref: string): unknown {
  if (!ref.startsWith('#')) return undefined;
  let target: unknown = root;
  const path = ref.slice(1);
  if (path === '') return root;
  if (!path.startsWith('/')) return undefined;
  for (const raw of path.slice(1).split('/')) {
    let token: string;
    try {
      token = decodeURIComponent(raw);
    } catch {
      token = raw;
    }
    token = token.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(target)) target = target[Number(token)];
    else if (isSchema(target) && Object.hasOwn(target, token)) target = target[token];
    else return undefined;
  }
  return target;
}

/** `allOf` members (and a `$ref`'s target with its siblings) as one schema: properties and required united. */
function merge(schemas: readonly Schema[]): Schema {
  const out: Schema = {};
  for (const s of schemas) {
    for (const [key, value] of Object.entries(s)) {
      if (key === 'properties' && isSchema(value)) {
        out.properties = { ...(isSchema(out.properties) ? out.properties : {}), ...value };
      } else if (key === 'required' && Array.isArray(value)) {
        out.required = [...new Set([...(Array.isArray(out.required) ? out.required : []), ...value])];
      } else if (!(key in out)) out[key] = value;
    }
  }
  return out;
}

const inferType = (s: Schema): unknown => {
  if (isSchema(s.properties) || Array.isArray(s.required) || 'additionalProperties' in s) return 'object';
  if ('items' in s || 'prefixItems' in s || 'minItems' in s || 'maxItems' in s) return 'array';
  if ('minLength' in s || 'maxLength' in s || 'format' in s || 'pattern' in s) return 'string';
  if ('minimum' in s || 'maximum' in s || 'exclusiveMinimum' in s || 'exclusiveMaximum' in s) return 'number';
  if ('multipleOf' in s) return 'number';
  return undefined;
};

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

interface Bound {
  at: number;
  open: boolean;
}

/** The tighter of `minimum` (open under draft 4's `exclusiveMinimum: true`) and `exclusiveMinimum`. */
function lowerBound(s: Schema): Bound | undefined {
  const min = num(s.minimum);
  let b = min === undefined ? undefined : { at: min, open: s.exclusiveMinimum === true };
  const ex = num(s.exclusiveMinimum);
  if (ex !== undefined && (b === undefined || ex >= b.at)) b = { at: ex, open: true };
  return b;
}

function upperBound(s: Schema): Bound | undefined {
  const max = num(s.maximum);
  let b = max === undefined ? undefined : { at: max, open: s.exclusiveMaximum === true };
  const ex = num(s.exclusiveMaximum);
  if (ex !== undefined && (b === undefined || ex <= b.at)) b = { at: ex, open: true };
  return b;
}

/** integer → `seed` (1..10), number → `seed / 2` (0.5..5), moved inside the bounds and onto `multipleOf`. */
function numberFor(s: Schema, integer: boolean, seed: number): number {
  const lo = lowerBound(s);
  const hi = upperBound(s);
  let v = integer ? seed : seed / 2;
  if (integer) {
    const l =
      lo === undefined ? Number.NEGATIVE_INFINITY : lo.open ? Math.floor(lo.at) + 1 : Math.ceil(lo.at);
    const h =
      hi === undefined ? Number.POSITIVE_INFINITY : hi.open ? Math.ceil(hi.at) - 1 : Math.floor(hi.at);
    v = Math.min(Math.max(v, l), h);
  } else {
    const okLo = lo === undefined || (lo.open ? v > lo.at : v >= lo.at);
    const okHi = hi === undefined || (hi.open ? v < hi.at : v <= hi.at);
    if (!okLo || !okHi) {
      if (lo !== undefined && hi !== undefined) {
        v = lo.open || hi.open ? (lo.at + hi.at) / 2 : okLo ? hi.at : lo.at;
      } else if (lo !== undefined) v = lo.open ? lo.at + 1 : lo.at;
      else if (hi !== undefined) v = hi.open ? hi.at - 1 : hi.at;
    }
  }
  const step = num(s.multipleOf);
  if (step !== undefined && step > 0 && !Number.isInteger(v / step)) {
    const up = Math.ceil(v / step) * step;
    const fits = hi === undefined || (hi.open ? up < hi.at : up <= hi.at);
    v = fits ? up : Math.floor(v / step) * step;
  }
  return v;
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/** A string of a known `format`, from `seed`; undefined for formats without a rule (then a word). */
function formatted(format: string, word: string, seed: number): string | undefined {
  const day = 1 + (seed % 28);
  const hour = seed % 24;
  switch (format) {
    case 'date-time':
      return `2025-01-${pad2(day)}T${pad2(hour)}:00:00Z`;
    case 'date':
      return `2025-01-${pad2(day)}`;
    case 'time':
      return `${pad2(hour)}:00:00`;
    case 'duration':
      return `P${day}D`;
    case 'email':
    case 'idn-email':
      return `${word}@example.com`;
    case 'hostname':
    case 'idn-hostname':
      return `${word}.example.com`;
    case 'uri':
    case 'url':
    case 'iri':
    case 'uri-reference':
    case 'iri-reference':
      return `https://example.com/${word}`;
    case 'ipv4':
      return `192.0.2.${1 + (seed % 254)}`;
    case 'ipv6':
      return `2001:db8::${(seed % 0xffff).toString(16)}`;
    case 'uuid': {
      const h = (n: number) => fnv1a(`u${n}`, seed).toString(16).padStart(8, '0');
      const hex = h(0) + h(1) + h(2) + h(3);
      // Version 4, RFC 4122 variant: what strict validators (zod's uuid) require.
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
    }
    default:
      return undefined;
  }
}

/**
 * A value valid against `schema` (a JSON schema; `$ref`s resolve against it), the same for the same
 * `hash`: strings are words of the simulator's vocabulary, integers 1..10, numbers 0.5..5, booleans
 * `true`; every property is filled, required or not; arrays have one element (or `minItems`).
 * No schema, an empty one or one without a type gives `{}`.
 */
export function valueForSchema(schema: unknown, hash: number): unknown {
  const root = schema;
  const words = new TokenSource(hash);
  let n = 0;
  const small = () => 1 + (fnv1a(`n${n++}`, hash) % 10);
  const word = () => words.next().trim();
  /** Schemas reached through a `$ref` on the way to the current value. */
  const path = new Set<unknown>([root]);

  const valueFor = (input: unknown, depth: number, minimal: boolean, hops = 0): unknown => {
    if (input === false) return null;
    if (!isSchema(input) || depth > MAX_DEPTH) return {};
    const s = input;
    if (typeof s.$ref === 'string') {
      const target = resolvePointer(root, s.$ref);
      if (!isSchema(target) || hops >= MAX_HOPS) return {};
      const { $ref: _, ...siblings } = s;
      const merged = Object.keys(siblings).length > 0 ? merge([target, siblings]) : target;
      if (path.has(target)) return valueFor(merged, depth, true, hops + 1);
      path.add(target);
      try {
        return valueFor(merged, depth, minimal, hops + 1);
      } finally {
        path.delete(target);
      }
    }
    if ('const' in s) return s.const;
    if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
    if (Array.isArray(s.allOf) && s.allOf.length > 0) {
      const { allOf, ...rest } = s;
      // A member that is a `$ref` is merged as its target, which counts as on the path.
      const targets: Schema[] = [];
      let recursive = minimal;
      const members = (allOf as unknown[]).map((m) => {
        if (!isSchema(m) || typeof m.$ref !== 'string') return isSchema(m) ? m : {};
        const target = resolvePointer(root, m.$ref);
        if (!isSchema(target)) return {};
        if (path.has(target)) recursive = true;
        else targets.push(target);
        const { $ref: _, ...siblings } = m;
        return merge([target, siblings]);
      });
      if (hops >= MAX_HOPS) return {};
      for (const t of targets) path.add(t);
      try {
        return valueFor(merge([rest, ...members]), depth, recursive, hops + 1);
      } finally {
        for (const t of targets) path.delete(t);
      }
    }
    const alternatives = [s.anyOf, s.oneOf].find((a) => Array.isArray(a) && a.length > 0) as
      | unknown[]
      | undefined;
    if (alternatives !== undefined) {
      const { anyOf: _a, oneOf: _o, ...rest } = s;
      const isNull = (a: unknown) => isSchema(a) && a.type === 'null';
      const pick = minimal
        ? (alternatives.find(isNull) ??
          alternatives.find((a) => isSchema(a) && a.$ref === undefined) ??
          alternatives[0])
        : (alternatives.find((a) => !isNull(a)) ?? alternatives[0]);
      const chosen = Object.keys(rest).length > 0 && isSchema(pick) ? merge([pick, rest]) : pick;
      return valueFor(chosen, depth, minimal, hops + 1);
    }
    const types = Array.isArray(s.type) ? s.type : [s.type];
    let type = minimal && types.includes('null') ? 'null' : (types.find((t) => t !== 'null') ?? types[0]);
    if (type === undefined) type = inferType(s);
    switch (type) {
      case 'string':
        return stringFor(s);
      case 'integer':
        return numberFor(s, true, small());
      case 'number':
        return numberFor(s, false, small());
      case 'boolean':
        return true;
      case 'null':
        return null;
      case 'array':
        return arrayFor(s, depth, minimal);
      case 'object':
        return objectFor(s, depth, minimal);
      default:
        return {};
    }
  };

  const stringFor = (s: Schema): string => {
    const w = word();
    if (typeof s.format === 'string') {
      const f = formatted(s.format, w, small());
      if (f !== undefined) return f;
    }
    let out = w;
    const minLength = num(s.minLength) ?? 0;
    while (out.length < minLength) out += ` ${word()}`;
    const maxLength = num(s.maxLength);
    if (maxLength !== undefined && Array.from(out).length > maxLength)
      out = Array.from(out).slice(0, maxLength).join('');
    return out;
  };

  const arrayFor = (s: Schema, depth: number, minimal: boolean): unknown[] => {
    // Draft 2020 tuples are prefixItems (+ items for the rest); older drafts put an array in items.
    const prefix = Array.isArray(s.prefixItems) ? s.prefixItems : Array.isArray(s.items) ? s.items : [];
    const rest = Array.isArray(s.items) ? s.additionalItems : s.items;
    const minItems = num(s.minItems) ?? 0;
    const maxItems = num(s.maxItems) ?? Number.POSITIVE_INFINITY;
    // One element (or the whole tuple), at least minItems, at most maxItems; minItems only when
    // minimal or when nothing says what an element is (then each is `{}`, which anything allows).
    let count = minimal ? minItems : Math.max(minItems, Math.min(Math.max(1, prefix.length), maxItems));
    if (prefix.length === 0 && !isSchema(rest)) count = minItems;
    if (rest === false) count = Math.min(count, prefix.length);
    const out: unknown[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < count; i++) {
      const item = i < prefix.length ? prefix[i] : rest;
      let value = valueFor(item, depth + 1, minimal);
      if (s.uniqueItems === true) {
        if (isSchema(item) && Array.isArray(item.enum) && item.enum.length > 0)
          value = item.enum[i % item.enum.length];
        for (let tries = 0; seen.has(JSON.stringify(value)) && tries < 8; tries++)
          value = valueFor(item, depth + 1, minimal);
        seen.add(JSON.stringify(value));
      }
      out.push(value);
    }
    return out;
  };

  const objectFor = (s: Schema, depth: number, minimal: boolean): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    const properties = isSchema(s.properties) ? s.properties : {};
    const required = new Set(Array.isArray(s.required) ? s.required.map(String) : []);
    for (const [key, prop] of Object.entries(properties)) {
      if (!minimal || required.has(key)) out[key] = valueFor(prop, depth + 1, minimal);
    }
    const extra = isSchema(s.additionalProperties) ? s.additionalProperties : {};
    for (const key of required) if (!(key in out)) out[key] = valueFor(extra, depth + 1, minimal);
    if (s.additionalProperties !== false) {
      const minProperties = num(s.minProperties) ?? 0;
      for (let tries = 0; Object.keys(out).length < minProperties && tries < minProperties * 4; tries++) {
        const key = word();
        if (!(key in out)) out[key] = valueFor(extra, depth + 1, minimal);
      }
    }
    return out;
  };

  return valueFor(schema, 0, false);
}

/** {@link valueForSchema} as JSON text, the way a constrained model writes it (compact). */
export function jsonForSchema(schema: unknown, hash: number): string {
  return JSON.stringify(valueForSchema(schema, hash));
}

/** Words in a `json_object` answer's one string. */
const MIN_WORDS = 4;
const MAX_WORDS = 12;

/** A `json_object` answer: any JSON object would do; this one is `{"answer":"<a few words>"}`. */
export function jsonObjectAnswer(hash: number): string {
  const words = new TokenSource(hash);
  const count = MIN_WORDS + (fnv1a('json_object', hash) % (MAX_WORDS - MIN_WORDS + 1));
  let text = '';
  for (let i = 0; i < count; i++) text += words.next();
  return JSON.stringify({ answer: text });
}
