import { EnvError } from '@llmgw/config';
import { describe, expect, it } from 'vitest';
import { parseApiEnv } from './env.ts';

const base = { REDIS_URL: 'redis://127.0.0.1:6379' };
const tiers = (t: Record<string, Record<string, number>>) =>
  JSON.stringify(
    Object.fromEntries(
      Object.entries(t).map(([name, extra]) => [
        name,
        { requests_per_min: 10, tokens_per_day: 1000, priority: 1, ...extra },
      ]),
    ),
  );

describe('api env: shedding and /ready', () => {
  it('defaults: free sheds first, enterprise at QUEUE_MAX_WAITING, /ready at the top shed point', () => {
    const env = parseApiEnv(base);
    expect(env.SHED_AT).toEqual({ free: 8, pro: 16, enterprise: 24 });
    expect(env.READY_MAX_WAITING).toBe(24);
    const big = parseApiEnv({ ...base, QUEUE_MAX_WAITING: '100' });
    expect(big.SHED_AT).toEqual({ free: 34, pro: 67, enterprise: 100 });
    expect(big.READY_MAX_WAITING).toBe(100);
  });

  it('an explicit shed_at wins; /ready follows the highest one', () => {
    const env = parseApiEnv({
      ...base,
      TIERS_JSON: tiers({ free: { priority: 3, shed_at: 5 }, gold: { priority: 1, shed_at: 20 } }),
    });
    expect(env.SHED_AT).toEqual({ free: 5, gold: 20 });
    expect(env.READY_MAX_WAITING).toBe(20);
  });

  it('refuses READY_MAX_WAITING below the highest tier shed point, naming the variable', () => {
    expect(() => parseApiEnv({ ...base, READY_MAX_WAITING: '16' })).toThrow(EnvError);
    expect(() => parseApiEnv({ ...base, READY_MAX_WAITING: '16' })).toThrow(
      /READY_MAX_WAITING: must be at least 24/,
    );
    expect(parseApiEnv({ ...base, READY_MAX_WAITING: '30' }).READY_MAX_WAITING).toBe(30);
  });

  it('refuses a shed_at above QUEUE_MAX_WAITING (the ceiling for every tier)', () => {
    expect(() =>
      parseApiEnv({ ...base, QUEUE_MAX_WAITING: '10', TIERS_JSON: tiers({ free: { shed_at: 11 } }) }),
    ).toThrow(/TIERS_JSON: free.shed_at 11 is above QUEUE_MAX_WAITING 10/);
  });

  it('a bad tier table is still reported as such', () => {
    expect(() => parseApiEnv({ ...base, TIERS_JSON: tiers({ free: { max_waiting: 0 } }) })).toThrow(
      /TIERS_JSON: .*free\.max_waiting/,
    );
    expect(() => parseApiEnv({ ...base, TIERS_JSON: '{"pro": {}}' })).toThrow(/TIERS_JSON/);
  });
});

describe('api env: MODEL_FORGET_AFTER_MS', () => {
  it('24 h by default, never with SCALE_TO_ZERO (a sleeping pool must still wake), an explicit value wins', () => {
    expect(parseApiEnv(base).MODEL_FORGET_AFTER_MS).toBe(86_400_000);
    expect(parseApiEnv({ ...base, SCALE_TO_ZERO: '1' }).MODEL_FORGET_AFTER_MS).toBe(0);
    expect(
      parseApiEnv({ ...base, SCALE_TO_ZERO: '1', MODEL_FORGET_AFTER_MS: '5000' }).MODEL_FORGET_AFTER_MS,
    ).toBe(5000);
    expect(parseApiEnv({ ...base, MODEL_FORGET_AFTER_MS: '0' }).MODEL_FORGET_AFTER_MS).toBe(0);
    expect(() => parseApiEnv({ ...base, MODEL_FORGET_AFTER_MS: '-1' })).toThrow(/MODEL_FORGET_AFTER_MS/);
  });
});

describe('api env: the usage ledger', () => {
  it('USAGE_RETENTION_DAYS: 400 by default; PRICES_JSON: per model, USD per million tokens', () => {
    expect(parseApiEnv(base)).toMatchObject({ USAGE_RETENTION_DAYS: 400, PRICES: undefined });
    expect(parseApiEnv({ ...base, USAGE_RETENTION_DAYS: '30' }).USAGE_RETENTION_DAYS).toBe(30);
    expect(() => parseApiEnv({ ...base, USAGE_RETENTION_DAYS: '0' })).toThrow(/USAGE_RETENTION_DAYS/);
    const env = parseApiEnv({
      ...base,
      PRICES_JSON:
        '{"meta-llama/Llama-3.1-8B-Instruct":{"input":0.05,"output":0.08},"constructor":{"input":1,"output":1}}',
    });
    expect(env.PRICES?.get('meta-llama/Llama-3.1-8B-Instruct')).toEqual({ input: 0.05, output: 0.08 });
    // A model named like an Object property is a model like any other.
    expect(env.PRICES?.get('constructor')).toEqual({ input: 1, output: 1 });
    expect(env.PRICES?.has('toString')).toBe(false);
  });

  it('a bad price table names PRICES_JSON and what is wrong', () => {
    expect(() => parseApiEnv({ ...base, PRICES_JSON: '{' })).toThrow(/PRICES_JSON: not JSON/);
    expect(() => parseApiEnv({ ...base, PRICES_JSON: '[1]' })).toThrow(/PRICES_JSON: expected an object/);
    expect(() => parseApiEnv({ ...base, PRICES_JSON: '{"m":{"input":-1,"output":1}}' })).toThrow(
      /PRICES_JSON: m\.input/,
    );
    expect(() => parseApiEnv({ ...base, PRICES_JSON: '{"m":{"input":1}}' })).toThrow(
      /PRICES_JSON: m\.output/,
    );
    expect(() => parseApiEnv({ ...base, PRICES_JSON: '{"m":{"input":1,"output":1,"cached":1}}' })).toThrow(
      /PRICES_JSON: m/,
    );
  });
});

describe('api env: files', () => {
  it('OpenAI’s limits by default (200 MiB, 50,000 lines), 30 days; a bad value names its variable', () => {
    const env = parseApiEnv(base);
    expect([env.BATCH_FILE_MAX_BYTES, env.BATCH_MAX_REQUESTS, env.FILE_TTL_DAYS]).toEqual([
      200 * 1024 * 1024,
      50_000,
      30,
    ]);
    const set = parseApiEnv({
      ...base,
      BATCH_FILE_MAX_BYTES: '1048576',
      BATCH_MAX_REQUESTS: '10',
      FILE_TTL_DAYS: '1',
    });
    expect([set.BATCH_FILE_MAX_BYTES, set.BATCH_MAX_REQUESTS, set.FILE_TTL_DAYS]).toEqual([1_048_576, 10, 1]);
    for (const name of ['BATCH_FILE_MAX_BYTES', 'BATCH_MAX_REQUESTS', 'FILE_TTL_DAYS']) {
      expect(() => parseApiEnv({ ...base, [name]: '0' })).toThrow(new RegExp(name));
    }
  });
});
