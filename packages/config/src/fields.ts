import { z } from 'zod';

/** Field builders shared by the per-process env schemas, so every process reads a variable the same way. */

export const port = (def: number) => z.coerce.number().int().min(0).max(65535).default(def);

export const positiveInt = (def: number) => z.coerce.number().int().positive().default(def);

export const nonNegativeInt = (def: number) => z.coerce.number().int().min(0).default(def);

/** `1`/`true`/`yes`/`on` → true, `0`/`false`/`no`/`off` → false; anything else is an error. */
export const bool = (def: boolean) =>
  z
    .enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === '1' || v === 'true' || v === 'yes' || v === 'on');

/** Comma-separated list, trimmed, empty items dropped. */
export const csv = (def: string) =>
  z
    .string()
    .default(def)
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x.length > 0),
    );

export const redisUrl = z
  .string()
  .default('redis://127.0.0.1:6379')
  .refine((s) => /^rediss?:\/\//.test(s), 'must start with redis:// or rediss://');

export const logLevel = z
  .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  .default('info');

/** Prefix of every Redis key and channel this deployment owns; several deployments may share one Redis. */
export const keyPrefixOf = (def: string) =>
  z
    .string()
    .default(def)
    .refine((s) => /^[A-Za-z0-9_.{}-]+$/.test(s), 'letters, digits, _ . - { } only');
export const keyPrefix = keyPrefixOf('llmgw');

export const DEFAULT_MODEL = 'sim-llama-3-8b';
