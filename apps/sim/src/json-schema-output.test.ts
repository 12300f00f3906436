import { Ajv, type AnySchema } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { jsonForSchema, jsonObjectAnswer, valueForSchema } from './json-schema-output.ts';

// ajv-formats is CommonJS: its default export arrives wrapped under `default`.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (
  ajv: Ajv,
) => Ajv;

const draft7 = addFormats(new Ajv({ strict: false, allErrors: true }));
const draft2020 = addFormats(new Ajv2020({ strict: false, allErrors: true }) as unknown as Ajv);

/** The generated value for 40 hashes, each checked by a validator of the schema's draft. */
function expectValid(schema: Record<string, unknown>, ajv: Ajv = draft2020): unknown {
  const validate = ajv.compile(schema as AnySchema);
  let first: unknown;
  for (let hash = 1; hash <= 40; hash++) {
    const value = JSON.parse(jsonForSchema(schema, hash * 7919));
    first ??= value;
    if (!validate(value)) {
      throw new Error(`hash ${hash}: ${JSON.stringify(value)}\n${JSON.stringify(validate.errors, null, 1)}`);
    }
  }
  return first;
}

describe('valueForSchema', () => {
  it('every keyword of the supported subset, strict-mode style', () => {
    const schema = {
      type: 'object',
      properties: {
        word: { type: 'string' },
        long: { type: 'string', minLength: 30 },
        short: { type: 'string', maxLength: 2 },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
        kind: { const: 'fixed' },
        email: { type: 'string', format: 'email' },
        when: { type: 'string', format: 'date-time' },
        day: { type: 'string', format: 'date' },
        at: { type: 'string', format: 'time' },
        id: { type: 'string', format: 'uuid' },
        link: { type: 'string', format: 'uri' },
        host: { type: 'string', format: 'hostname' },
        ip: { type: 'string', format: 'ipv4' },
        ip6: { type: 'string', format: 'ipv6' },
        count: { type: 'integer', minimum: 20, maximum: 30 },
        capped: { type: 'integer', maximum: -5 },
        positive: { type: 'integer', exclusiveMinimum: 0, exclusiveMaximum: 2 },
        even: { type: 'integer', multipleOf: 4 },
        ratio: { type: 'number', minimum: 0, maximum: 0.25 },
        open: { type: 'number', exclusiveMinimum: 10, exclusiveMaximum: 10.5 },
        half: { type: 'number', multipleOf: 0.5, minimum: 3 },
        flag: { type: 'boolean' },
        nothing: { type: 'null' },
        maybe: { type: ['string', 'null'] },
        tags: { type: 'array', items: { type: 'string' }, minItems: 3, maxItems: 5 },
        distinct: { type: 'array', items: { enum: ['a', 'b', 'c'] }, minItems: 3, uniqueItems: true },
        none: { type: 'array', items: { type: 'integer' }, maxItems: 0 },
        free: { type: 'array' },
        point: { type: 'array', prefixItems: [{ type: 'number' }, { type: 'string' }], items: false },
        nested: {
          type: 'object',
          properties: {
            inner: { type: 'object', properties: { deep: { type: 'integer' } }, required: ['deep'] },
          },
          required: ['inner'],
          additionalProperties: false,
        },
        map: { type: 'object', additionalProperties: { type: 'integer' }, minProperties: 2 },
        either: { anyOf: [{ type: 'null' }, { type: 'boolean' }] },
        one: {
          oneOf: [
            { type: 'integer', minimum: 100 },
            { type: 'string', maxLength: 0 },
          ],
        },
        both: {
          allOf: [{ properties: { a: { type: 'string' } } }, { properties: { b: { type: 'integer' } } }],
          required: ['a', 'b'],
        },
        anything: {},
      },
      required: ['word', 'unit', 'nested', 'map'],
      additionalProperties: false,
    };
    const value = expectValid(schema) as Record<string, unknown>;
    // Every property, in the schema's order (as a constrained decoder writes them).
    expect(Object.keys(value)).toEqual(Object.keys(schema.properties));
    expect(value).toMatchObject({ unit: 'celsius', kind: 'fixed', flag: true, nothing: null, either: true });
    expect(value.positive).toBe(1);
    expect(value.distinct).toEqual(['a', 'b', 'c']);
    expect(value.none).toEqual([]);
    expect(value.free).toEqual([]);
    expect(value.point).toEqual([expect.any(Number), expect.any(String)]);
    expect(value.anything).toEqual({});
  });

  it('pydantic-style schemas: $defs and $ref, Optional as anyOf with null, enums, discriminated unions, tuples', () => {
    // What pydantic v2 emits (after openai-python's to_strict_json_schema) for:
    //   class Unit(str, Enum): C = 'celsius'; F = 'fahrenheit'
    //   class Cat(BaseModel): kind: Literal['cat']; lives: conint(ge=1, le=9)
    //   class Dog(BaseModel): kind: Literal['dog']; good: bool
    //   class Reading(BaseModel): at: datetime; value: float; unit: Unit; note: Optional[str]
    //   class Report(BaseModel): city: str; readings: conlist(Reading, min_length=2);
    //     pet: Union[Cat, Dog] = Field(discriminator='kind'); span: Tuple[int, str]; best: Optional[Reading]
    const schema = {
      $defs: {
        Cat: {
          properties: {
            kind: { const: 'cat', title: 'Kind', type: 'string' },
            lives: { maximum: 9, minimum: 1, title: 'Lives', type: 'integer' },
          },
          required: ['kind', 'lives'],
          title: 'Cat',
          type: 'object',
          additionalProperties: false,
        },
        Dog: {
          properties: {
            kind: { const: 'dog', title: 'Kind', type: 'string' },
            good: { title: 'Good', type: 'boolean' },
          },
          required: ['kind', 'good'],
          title: 'Dog',
          type: 'object',
          additionalProperties: false,
        },
        Reading: {
          properties: {
            at: { format: 'date-time', title: 'At', type: 'string' },
            value: { title: 'Value', type: 'number' },
            unit: { $ref: '#/$defs/Unit' },
            note: { anyOf: [{ type: 'string' }, { type: 'null' }], title: 'Note' },
          },
          required: ['at', 'value', 'unit', 'note'],
          title: 'Reading',
          type: 'object',
          additionalProperties: false,
        },
        Unit: { enum: ['celsius', 'fahrenheit'], title: 'Unit', type: 'string' },
      },
      properties: {
        city: { title: 'City', type: 'string' },
        readings: { items: { $ref: '#/$defs/Reading' }, minItems: 2, title: 'Readings', type: 'array' },
        pet: {
          discriminator: { mapping: { cat: '#/$defs/Cat', dog: '#/$defs/Dog' }, propertyName: 'kind' },
          oneOf: [{ $ref: '#/$defs/Cat' }, { $ref: '#/$defs/Dog' }],
          title: 'Pet',
        },
        span: {
          maxItems: 2,
          minItems: 2,
          prefixItems: [{ type: 'integer' }, { type: 'string' }],
          title: 'Span',
          type: 'array',
        },
        best: { anyOf: [{ $ref: '#/$defs/Reading' }, { type: 'null' }], description: 'The best one' },
      },
      required: ['city', 'readings', 'pet', 'span', 'best'],
      title: 'Report',
      type: 'object',
      additionalProperties: false,
    };
    const value = expectValid(schema) as { readings: unknown[]; pet: unknown; best: unknown };
    expect(value.readings).toHaveLength(2);
    expect(value.readings[0]).toMatchObject({ unit: 'celsius', note: expect.any(String) });
    expect(value.pet).toMatchObject({ kind: 'cat' });
    expect(value.best).toMatchObject({ unit: 'celsius' });
  });

  it('draft-7 `definitions` and `$ref` with sibling keywords (allOf-wrapped refs, as pydantic v1 wrote them)', () => {
    const schema = {
      definitions: { 'Point/2D': { type: 'object', properties: { x: { type: 'number' } }, required: ['x'] } },
      type: 'object',
      properties: {
        origin: { $ref: '#/definitions/Point~12D', description: 'escaped pointer' },
        target: { allOf: [{ $ref: '#/definitions/Point%7E12D' }], description: 'percent-encoded' },
      },
      required: ['origin', 'target'],
    };
    const value = expectValid(schema, draft7);
    expect(value).toEqual({ origin: { x: expect.any(Number) }, target: { x: expect.any(Number) } });
  });

  it('recursive schemas end: a tree, a linked list, a root `#` reference, a mutual recursion', () => {
    const tree = {
      $defs: {
        Node: {
          type: 'object',
          properties: {
            name: { type: 'string' },
            children: { type: 'array', items: { $ref: '#/$defs/Node' } },
          },
          required: ['name', 'children'],
          additionalProperties: false,
        },
      },
      $ref: '#/$defs/Node',
    };
    expect(expectValid(tree)).toEqual({
      name: expect.any(String),
      children: [{ name: expect.any(String), children: [] }],
    });

    const list = {
      type: 'object',
      properties: { value: { type: 'integer' }, next: { anyOf: [{ $ref: '#' }, { type: 'null' }] } },
      required: ['value', 'next'],
    };
    expect(expectValid(list)).toEqual({
      value: expect.any(Number),
      next: { value: expect.any(Number), next: null },
    });

    const mutual = {
      $defs: {
        A: {
          type: 'object',
          properties: { b: { anyOf: [{ $ref: '#/$defs/B' }, { type: 'null' }] } },
          required: ['b'],
        },
        B: { type: 'object', properties: { a: { $ref: '#/$defs/A' } }, required: ['a'] },
      },
      $ref: '#/$defs/A',
    };
    expectValid(mutual);
  });

  it('zod 4 schemas, through z.toJSONSchema (draft 2020-12 and draft 7), parse with zod itself', () => {
    interface Category {
      name: string;
      sub: Category[];
    }
    const Category: z.ZodType<Category> = z.object({
      name: z.string(),
      get sub() {
        return z.array(Category);
      },
    });
    const Person = z.object({
      name: z.string().min(12),
      email: z.email(),
      id: z.uuid(),
      site: z.url(),
      born: z.iso.date(),
      seen: z.iso.datetime(),
      age: z.int().positive().max(150),
      score: z.number().gte(0).lt(1),
      role: z.enum(['admin', 'user']),
      kind: z.literal('person'),
      nick: z.string().nullable(),
      bio: z.string().optional(),
      tags: z.array(z.string()).min(2).max(3),
      pair: z.tuple([z.int(), z.boolean()]),
      shape: z.discriminatedUnion('type', [
        z.object({ type: z.literal('circle'), r: z.number().positive() }),
        z.object({ type: z.literal('square'), side: z.number() }),
      ]),
      value: z.union([z.number(), z.string()]),
      extra: z.record(z.string(), z.int()),
      category: Category,
    });
    for (const target of ['draft-2020-12', 'draft-7'] as const) {
      const schema = z.toJSONSchema(Person, { target }) as Record<string, unknown>;
      expectValid(schema, target === 'draft-7' ? draft7 : draft2020);
      for (let hash = 1; hash <= 20; hash++) Person.parse(valueForSchema(schema, hash));
    }
  });

  it('is deterministic: the same schema and hash give the same JSON, another hash other words', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' }, b: { type: 'integer' } } };
    expect(jsonForSchema(schema, 42)).toBe(jsonForSchema(schema, 42));
    expect(jsonForSchema(schema, 42)).not.toBe(jsonForSchema(schema, 43));
  });

  it('non-object roots and degenerate schemas', () => {
    expect(valueForSchema({ type: 'array', items: { type: 'integer' }, minItems: 2 }, 1)).toEqual([
      expect.any(Number),
      expect.any(Number),
    ]);
    expect(valueForSchema({ type: 'string', enum: ['x'] }, 1)).toBe('x');
    expect(valueForSchema({}, 1)).toEqual({});
    expect(valueForSchema(undefined, 1)).toEqual({});
    expect(valueForSchema({ type: 'object' }, 1)).toEqual({});
    expect(valueForSchema({ $ref: '#/$defs/missing' }, 1)).toEqual({});
    // A ref to itself never produces a value: the hop limit ends it.
    expect(valueForSchema({ $defs: { a: { $ref: '#/$defs/a' } }, $ref: '#/$defs/a' }, 1)).toEqual({});
  });
});

describe('jsonObjectAnswer', () => {
  it('is a JSON object with a few words, deterministic per hash', () => {
    const json = jsonObjectAnswer(7);
    const value = JSON.parse(json) as { answer: string };
    expect(value).toEqual({ answer: expect.stringMatching(/^\w+( \w+){3,11}$/) });
    expect(jsonObjectAnswer(7)).toBe(json);
    expect(jsonObjectAnswer(8)).not.toBe(json);
  });
});
