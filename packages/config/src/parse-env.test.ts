import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { bool, csv, port, positiveInt, redisUrl } from './fields.ts';
import { EnvError, parseEnv } from './parse-env.ts';

const Schema = z.object({
  PORT: port(8000),
  REDIS_URL: redisUrl,
  WORKERS: positiveInt(8),
  MODELS: csv('a,b'),
  DEBUG: bool(false),
});

describe('parseEnv', () => {
  it('applies defaults, treating empty strings as unset', () => {
    expect(parseEnv(Schema, { PORT: '', MODELS: undefined })).toEqual({
      PORT: 8000,
      REDIS_URL: 'redis://127.0.0.1:6379',
      WORKERS: 8,
      MODELS: ['a', 'b'],
      DEBUG: false,
    });
  });

  it('coerces and trims', () => {
    const env = parseEnv(Schema, { PORT: '9000', WORKERS: '2', MODELS: ' x , y ,', DEBUG: 'yes' });
    expect(env).toMatchObject({ PORT: 9000, WORKERS: 2, MODELS: ['x', 'y'], DEBUG: true });
  });

  it('names each bad variable with the value it got, one line each', () => {
    let err: unknown;
    try {
      parseEnv(Schema, { PORT: 'eighty', WORKERS: '0', REDIS_URL: 'http://x', DEBUG: 'maybe' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EnvError);
    const lines = (err as Error).message.split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^invalid environment variable PORT: .*\(got "eighty"\)$/);
    expect(lines.some((l) => l.startsWith('invalid environment variable WORKERS:'))).toBe(true);
    expect(lines.some((l) => l.startsWith('invalid environment variable REDIS_URL:'))).toBe(true);
    expect(lines.some((l) => l.startsWith('invalid environment variable DEBUG:'))).toBe(true);
  });
});
