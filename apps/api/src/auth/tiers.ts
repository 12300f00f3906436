import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** One tier's limits. `priority`: BullMQ priority of its jobs, lower runs first. */
export const TierLimits = z.object({
  requests_per_min: z.number().int().positive(),
  tokens_per_day: z.number().int().positive(),
  priority: z.number().int().min(1).max(2_097_152),
});
export type TierLimits = z.infer<typeof TierLimits>;

export const Tiers = z
  .record(z.string().regex(/^[a-z0-9_-]+$/, 'tier names: lower-case letters, digits, _ and -'), TierLimits)
  .refine((t) => 'free' in t, 'a "free" tier is required (the default)');
export type Tiers = z.infer<typeof Tiers>;

/** The original write-up's table. */
export const DEFAULT_TIERS: Tiers = {
  free: { requests_per_min: 10, tokens_per_day: 50_000, priority: 3 },
  pro: { requests_per_min: 60, tokens_per_day: 500_000, priority: 2 },
  enterprise: { requests_per_min: 300, tokens_per_day: 5_000_000, priority: 1 },
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
