import { SimError } from './errors.ts';
import { fnv1a, TokenSource } from './text.ts';

/** A tool the request offers, in either wire format. */
export interface ToolDefinition {
  name: string;
  /** JSON schema of the arguments (`function.parameters` / `input_schema`); may be absent. */
  schema: unknown;
}

/** A tool call the "model" will make; `arguments` is the whole JSON text. */
export interface ToolCallPlan {
  id: string;
  name: string;
  arguments: string;
}

/**
 * Which tools the model calls: the named one, else the first; the first two when `parallel` (and
 * nothing is named). A name the request does not offer is a 400, as on vLLM and Anthropic.
 */
export function chooseTools(
  tools: readonly ToolDefinition[],
  named: string | null,
  parallel: boolean,
): ToolDefinition[] {
  if (named !== null) {
    const tool = tools.find((t) => t.name === named);
    if (tool === undefined)
      throw new SimError('bad_request', `Tool '${named}' is not among the request's tools.`);
    return [tool];
  }
  return tools.slice(0, parallel ? 2 : 1);
}

/** The calls of `tools`, with arguments derived from the prompt hash; `newId` names each call. */
export function planToolCalls(
  tools: readonly ToolDefinition[],
  hash: number,
  newId: () => string,
): ToolCallPlan[] {
  return tools.map((t) => ({
    id: newId(),
    name: t.name,
    arguments: argumentsFor(t.schema, fnv1a(t.name, hash)),
  }));
}

type Schema = Record<string, unknown>;

const isSchema = (v: unknown): v is Schema => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Beyond this nesting (or a recursive `$ref`, which is not followed) a value is `{}`. */
const MAX_DEPTH = 8;

/**
 * Deterministic arguments for a JSON schema, serialized with `JSON.stringify`: every property is
 * filled (required or not): `const`/`enum` → that value, string → a word, integer → 1..10,
 * number → 0.5..5, boolean → true, array → one element of `items` (or []), object → recursive.
 * No schema, or one that is not an object, gives `{}`: arguments are always a JSON object.
 */
export function argumentsFor(schema: unknown, hash: number): string {
  const words = new TokenSource(hash);
  let n = 0;
  const small = () => 1 + (fnv1a(`n${n++}`, hash) % 10);

  const valueFor = (s: unknown, depth: number): unknown => {
    if (!isSchema(s) || depth > MAX_DEPTH) return {};
    if ('const' in s) return s.const;
    if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
    const alternatives = [s.anyOf, s.oneOf, s.allOf].find((a) => Array.isArray(a) && a.length > 0) as
      | unknown[]
      | undefined;
    if (alternatives !== undefined) {
      const nonNull = alternatives.find((a) => !(isSchema(a) && a.type === 'null'));
      return valueFor(nonNull ?? alternatives[0], depth + 1);
    }
    const types = Array.isArray(s.type) ? s.type : [s.type];
    let type = types.find((t) => t !== 'null') ?? types[0];
    if (type === undefined)
      type = isSchema(s.properties) ? 'object' : s.items !== undefined ? 'array' : undefined;
    switch (type) {
      case 'string':
        return words.next().trim();
      case 'integer':
        return clamp(small(), s);
      case 'number':
        return clamp(small() / 2, s);
      case 'boolean':
        return true;
      case 'null':
        return null;
      case 'array':
        return isSchema(s.items) ? [valueFor(s.items, depth + 1)] : [];
      case 'object': {
        const out: Record<string, unknown> = {};
        if (isSchema(s.properties)) {
          for (const [key, prop] of Object.entries(s.properties)) out[key] = valueFor(prop, depth + 1);
        }
        return out;
      }
      default:
        return {};
    }
  };

  const value = valueFor(schema, 0);
  return JSON.stringify(isSchema(value) ? value : {});
}

/** Keeps a generated number inside `minimum`/`maximum`, so schema validators accept it. */
function clamp(v: number, s: Schema): number {
  if (typeof s.minimum === 'number' && v < s.minimum) return s.minimum;
  if (typeof s.maximum === 'number' && v > s.maximum) return s.maximum;
  return v;
}

const MIN_PIECE = 6;
const MAX_PIECE = 10;

/**
 * The arguments text split the way a tool parser streams it: pieces of 6..10 characters (sizes
 * from `hash`), at least two, never splitting a surrogate pair. Each piece is one token.
 */
export function argumentPieces(args: string, hash: number): string[] {
  const chars = Array.from(args);
  if (chars.length < 2) return [args];
  const pieces: string[] = [];
  let at = 0;
  while (at < chars.length) {
    const size = MIN_PIECE + (fnv1a(`p${pieces.length}`, hash) % (MAX_PIECE - MIN_PIECE + 1));
    pieces.push(chars.slice(at, at + size).join(''));
    at += size;
  }
  if (pieces.length === 1) {
    const half = Math.ceil(chars.length / 2);
    return [chars.slice(0, half).join(''), chars.slice(half).join('')];
  }
  return pieces;
}
