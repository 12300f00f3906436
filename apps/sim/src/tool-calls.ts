import { SimError } from './errors.ts';
import { isSchema, valueForSchema } from './json-schema-output.ts';
import { fnv1a } from './text.ts';

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

/**
 * Deterministic arguments for a JSON schema, serialized with `JSON.stringify`: the value
 * json-schema-output.ts builds for it (the generator structured outputs use too). No schema, or
 * one whose value is not an object, gives `{}`: arguments are always a JSON object.
 */
export function argumentsFor(schema: unknown, hash: number): string {
  const value = valueForSchema(schema, hash);
  return JSON.stringify(isSchema(value) ? value : {});
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
