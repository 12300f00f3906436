import type { Keys, LimitScope } from '@llmgw/redis';
import type { Principal } from '../context.ts';
import { type TierLimits, type Tiers, tierLimits } from './tiers.ts';

/** One limit as it applies to a request: its value, and the counter it is counted on. */
export interface AppliedLimit {
  limit: number;
  /** The key's own limit (counted for the key alone), or its tier's (counted for the user). */
  own: boolean;
  scope: LimitScope;
}

/** The limits of one caller: its tier's, each replaced by its key's own where the key sets one. */
export interface CallerLimits {
  tier: TierLimits;
  requestsPerMin: AppliedLimit;
  tokensPerMin?: AppliedLimit;
  tokensPerDay: AppliedLimit;
  monthlyBudget?: number;
}

export function limitsOf(
  tiers: Tiers,
  principal: Pick<Principal, 'userId' | 'tier' | 'keyId' | 'grant'>,
): CallerLimits {
  const tier = tierLimits(tiers, principal.tier);
  const own = principal.grant?.limits ?? {};
  const user: LimitScope = { user: principal.userId };
  const applied = (tierValue: number | undefined, keyValue: number | undefined): AppliedLimit | undefined => {
    if (keyValue !== undefined && principal.keyId !== undefined) {
      return { limit: keyValue, own: true, scope: { key: principal.keyId } };
    }
    return tierValue === undefined ? undefined : { limit: tierValue, own: false, scope: user };
  };
  const tpm = applied(tier.tokens_per_min, own.tokens_per_min);
  return {
    tier,
    requestsPerMin: applied(tier.requests_per_min, own.requests_per_min)!,
    ...(tpm && { tokensPerMin: tpm }),
    tokensPerDay: applied(tier.tokens_per_day, own.tokens_per_day)!,
    ...(principal.grant?.monthlyBudget !== undefined && { monthlyBudget: principal.grant.monthlyBudget }),
  };
}

/** The Redis key of a caller's request-rate window. */
export const rateKeyOf = (keys: Keys, l: AppliedLimit): string =>
  'key' in l.scope ? keys.keyRateLimit(l.scope.key) : keys.rateLimit(l.scope.user);

/** The Redis key of a caller's daily quota on `day`. */
export const quotaKeyOf = (keys: Keys, l: AppliedLimit, day: string): string =>
  'key' in l.scope ? keys.keyQuota(l.scope.key, day) : keys.quota(l.scope.user, day);
