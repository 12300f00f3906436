import { describe, expect, it } from 'vitest';
import { SimError } from './errors.ts';
import { argumentPieces, argumentsFor, chooseTools } from './tool-calls.ts';

describe('argumentsFor', () => {
  const schema = {
    type: 'object',
    properties: {
      city: { type: 'string' },
      unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
      days: { type: 'integer', minimum: 20 },
      ratio: { type: 'number', maximum: 0.25 },
      hourly: { type: 'boolean' },
      tags: { type: 'array', items: { type: 'string' } },
      free: { type: 'array' },
      nested: { type: 'object', properties: { kind: { const: 'x' }, maybe: { type: ['null', 'integer'] } } },
      either: { anyOf: [{ type: 'null' }, { type: 'boolean' }] },
      anything: {},
    },
  };

  it('fills every property deterministically from the schema', () => {
    const args = JSON.parse(argumentsFor(schema, 1)) as Record<string, unknown>;
    expect(Object.keys(args)).toEqual(Object.keys(schema.properties));
    expect(args.city).toMatch(/^[a-z]+$/);
    expect(args.unit).toBe('celsius');
    expect(args.days).toBe(20);
    expect(args.ratio).toBe(0.25);
    expect(args.hourly).toBe(true);
    expect(args.tags).toEqual([expect.stringMatching(/^[a-z]+$/)]);
    expect(args.free).toEqual([]);
    expect(args.nested).toEqual({ kind: 'x', maybe: expect.any(Number) });
    expect(Number.isInteger((args.nested as { maybe: number }).maybe)).toBe(true);
    expect(args.either).toBe(true);
    expect(args.anything).toEqual({});
    expect(argumentsFor(schema, 1)).toBe(argumentsFor(schema, 1));
    expect(argumentsFor(schema, 1)).not.toBe(argumentsFor(schema, 2));
  });

  it('gives {} without a schema or for a schema that is not an object', () => {
    expect(argumentsFor(undefined, 1)).toBe('{}');
    expect(argumentsFor(null, 1)).toBe('{}');
    expect(argumentsFor({ type: 'string' }, 1)).toBe('{}');
    expect(argumentsFor({ type: 'object' }, 1)).toBe('{}');
  });
});

describe('argumentPieces', () => {
  it('splits into pieces of 6..10 characters that join back', () => {
    const args = argumentsFor(
      {
        type: 'object',
        properties: { a: { type: 'string' }, b: { type: 'string' }, c: { type: 'integer' } },
      },
      5,
    );
    const pieces = argumentPieces(args, 9);
    expect(pieces.join('')).toBe(args);
    expect(pieces.length).toBeGreaterThanOrEqual(2);
    for (const p of pieces.slice(0, -1)) expect(p.length).toBeGreaterThanOrEqual(6);
    for (const p of pieces) expect(p.length).toBeLessThanOrEqual(10);
    expect(argumentPieces(args, 9)).toEqual(pieces);
  });

  it('makes at least two pieces, without splitting a surrogate pair', () => {
    expect(argumentPieces('{}', 1)).toEqual(['{', '}']);
    const emoji = '{"a":"😀😀😀😀😀😀😀"}';
    const pieces = argumentPieces(emoji, 3);
    expect(pieces.join('')).toBe(emoji);
    expect(pieces.length).toBeGreaterThan(2);
    for (const p of pieces) {
      expect(p).not.toMatch(/^[\udc00-\udfff]/);
      expect(p).not.toMatch(/[\ud800-\udbff]$/);
    }
  });
});

describe('chooseTools', () => {
  const tools = [
    { name: 'a', schema: {} },
    { name: 'b', schema: {} },
    { name: 'c', schema: {} },
  ];

  it('picks the named tool, else the first, or the first two in parallel', () => {
    expect(chooseTools(tools, null, false).map((t) => t.name)).toEqual(['a']);
    expect(chooseTools(tools, null, true).map((t) => t.name)).toEqual(['a', 'b']);
    expect(chooseTools(tools, 'c', true).map((t) => t.name)).toEqual(['c']);
    expect(chooseTools(tools.slice(0, 1), null, true).map((t) => t.name)).toEqual(['a']);
    expect(() => chooseTools(tools, 'zzz', false)).toThrow(SimError);
  });
});
