import type { MiddlewareHandler } from 'hono';
import { type ApiKeyStore, isExpired } from '../auth/api-keys.ts';
import { isTier, type Tiers } from '../auth/tiers.ts';
import type { AppEnv } from '../context.ts';
import { ApiError } from '../errors/index.ts';

export type AuthMode = 'api_key' | 'trusted_headers';

export interface AuthenticateOptions {
  mode: AuthMode;
  store: ApiKeyStore;
  tiers: Tiers;
}

/** `Authorization: Bearer <key>`, else `x-api-key: <key>`. */
function presentedKey(authorization: string | undefined, xApiKey: string | undefined): string | undefined {
  const m = authorization?.match(/^Bearer\s+(\S+)\s*$/i);
  return m?.[1] ?? (xApiKey?.trim() || undefined);
}

/**
 * Who is calling, and at which tier:
 * - `api_key` (default): the key's record decides user and tier; client headers claiming a user
 *   or a tier are ignored.
 * - `trusted_headers`: `X-User-ID` (required) and `X-User-Tier`, as set by an authenticating proxy
 *   in front. Unsafe when the api is reachable directly: any client can claim any tier.
 */
export function authenticate({ mode, store, tiers }: AuthenticateOptions): MiddlewareHandler<AppEnv> {
  // A tier the table does not have (a stale key record, a header) is served as free.
  const tierOf = (t: string | undefined) => (t !== undefined && isTier(tiers, t) ? t : 'free');
  return async function authenticateMiddleware(c, next) {
    if (mode === 'trusted_headers') {
      const userId = c.req.header('x-user-id')?.trim();
      if (!userId) throw new ApiError('unauthorized', 'X-User-ID header is required');
      c.set('principal', { userId, tier: tierOf(c.req.header('x-user-tier')) });
      c.set('userId', userId);
      return next();
    }
    const key = presentedKey(c.req.header('authorization'), c.req.header('x-api-key'));
    if (!key) throw new ApiError('unauthorized', 'missing API key: send Authorization: Bearer <key>');
    let record: Awaited<ReturnType<ApiKeyStore['lookup']>>;
    try {
      record = await store.lookup(key);
    } catch {
      throw new ApiError('service_unavailable', 'cannot verify the API key right now; retry shortly', {
        headers: { 'Retry-After': '1' },
      });
    }
    if (!record) throw new ApiError('unauthorized', 'invalid API key');
    if (record.revoked) throw new ApiError('unauthorized', 'this API key has been revoked');
    if (isExpired(record)) {
      throw new ApiError(
        'key_expired',
        record.superseded
          ? 'this API key was rotated and its grace period is over: use its new key'
          : `this API key expired at ${new Date(record.expiresAt!).toISOString()}`,
      );
    }
    store.markUsed(key, record);
    const { models, limits, monthlyBudget } = record;
    const grant = {
      ...(models !== undefined && { models }),
      ...(limits !== undefined && { limits }),
      ...(monthlyBudget !== undefined && { monthlyBudget }),
    };
    c.set('principal', {
      userId: record.userId,
      tier: tierOf(record.tier),
      keyId: record.id,
      ...(Object.keys(grant).length > 0 && { grant }),
    });
    c.set('userId', record.userId);
    c.get('log').debug({ key_id: record.id }, 'authenticated');
    return next();
  };
}
