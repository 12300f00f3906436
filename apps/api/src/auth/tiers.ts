import { readFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * One tier's limits.
 * - `priority`: scheduling rank, lower runs first. A job's BullMQ priority is a band of this rank
 *   plus its user's jobs in flight (admission/fair-share.ts); 2097 bands fit under BullMQ's 2^21.
 * - `max_waiting`: most jobs one user may have waiting to start; absent: no per-user cap.
 * - `max_concurrent`: most jobs one user may have in flight (waiting or running); absent: no cap.
 *   Over either: 429 `concurrency_limit_exceeded`.
 * - `shed_at`: a model's waiting depth from which this tier's requests get 503
 *   `server_overloaded`; absent: derived from QUEUE_MAX_WAITING by rank (admission/shedding.ts).
 * - `tokens_per_min`: prompt estimate + max_tokens reserved at admission from a bucket that
 *   refills this many a minute, settled to the real usage; absent: no such limit.
 */
export const TierLimits = z.object({
  requests_per_min: z.number().int().positive(),
  tokens_per_min: z.number().int().positive().optional(),
  tokens_per_day: z.number().int().positive(),
  priority: z.number().int().min(1).max(2097),
  max_waiting: z.number().int().positive().optional(),
  max_concurrent: z.number().int().positive().optional(),
  shed_at: z.number().int().positive().optional(),
});
export type TierLimits = z.infer<typeof TierLimits>;

/**
 * Names every JavaScript object answers to (`tiers.constructor` is `Object`): a tier so named
 * would pass lookups for every request and be nobody's table. zod drops a `__proto__` key
 * silently, so the raw JSON's own keys are checked before the record is parsed.
 */
const RESERVED_TIER_NAMES = new Set(['__proto__', 'constructor', 'prototype']);

export const Tiers = z
  .unknown()
  .superRefine((value, ctx) => {
    if (typeof value !== 'object' || value === null) return;
    for (const name of Object.keys(value)) {
      if (RESERVED_TIER_NAMES.has(name))
        ctx.addIssue({ code: 'custom', path: [name], message: `tier name "${name}" is reserved` });
    }
  })
  .pipe(
    z
      .record(
        z.string().regex(/^[a-z0-9_-]+$/, 'tier names: lower-case letters, digits, _ and -'),
        TierLimits,
      )
      .refine((t) => Object.hasOwn(t, 'free'), 'a "free" tier is required (the default)'),
  );
export type Tiers = z.infer<typeof Tiers>;

/** Whether `name` (from a request, a key record or config) is a tier of the table. */
export const isTier = (tiers: Tiers, name: string): boolean => Object.hasOwn(tiers, name);

/** The limits of tier `name`; an unknown name gets the free tier's. */
export const tierLimits = (tiers: Tiers, name: string | undefined): TierLimits =>
  (name !== undefined && isTier(tiers, name) ? tiers[name] : undefined) ?? (tiers.free as TierLimits);

/**
 * The original write-up's table, plus per-user concurrency: a free user may have 4 requests in
 * flight of which 2 queued, pro 16 and 8, enterprise 64 (more than the default queue holds: its
 * bound is the queue's, with fair-share ordering between its users). No tokens per minute by
 * default (a deployment sets it in TIERS_JSON from what its backends serve): an upgrade adds no
 * limit nobody configured.
 */
export const DEFAULT_TIERS: Tiers = {
  free: {
    requests_per_min: 10,
    tokens_per_day: 50_000,
    priority: 3,
    max_waiting: 2,
    max_concurrent: 4,
  },
  pro: {
    requests_per_min: 60,
    tokens_per_day: 500_000,
    priority: 2,
    max_waiting: 8,
    max_concurrent: 16,
  },
  enterprise: {
    requests_per_min: 300,
    tokens_per_day: 5_000_000,
    priority: 1,
    max_waiting: 64,
    max_concurrent: 64,
  },
};

/** TIERS_JSON (inline) wins over TIERS_FILE (a path); neither: the default table. Throws naming the source. */
export function loadTiers(json: string | undefined, file: string | undefined): Tiers {
  const [raw, source] =
    json !== undefined
      ? [json, 'TIERS_JSON']
      : file !== undefined
        ? [readFileSync(file, 'utf8'), `TIERS_FILE ${file}`]
        : [];
  if (raw === undefined) return DEFAULT_TIERS;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new Error(`${source}: not JSON (${(err as Error).message})`);
  }
  const parsed = Tiers.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${source}: ${issue?.path.join('.') || 'tiers'}: ${issue?.message}`);
  }
  return parsed.data;
}
