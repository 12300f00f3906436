import type { Logger } from '@llmgw/observability';
import { z } from 'zod';
import {
  type ApiKeyRecord,
  ApiKeyStore,
  type CreatedKey,
  KeyPolicy,
  KeyStateError,
} from '../auth/api-keys.ts';
import { isTier } from '../auth/tiers.ts';
import { clip } from '../clip.ts';
import { ApiError } from '../errors/index.ts';
import type { AppDeps } from '../hono-app.ts';

/**
 * What an administrator does to API keys, and the requests that ask for it: one code path for the
 * JSON API (key-routes.ts) and the admin page's forms (page/routes.ts), so both check, refuse and
 * log alike. Each throws an {@link ApiError} the caller renders its own way; none logs a secret.
 */

export const CreateKeyRequest = KeyPolicy.extend({
  user: z.string().min(1).max(256),
  tier: z.string().min(1).default('free'),
});
export type CreateKeyRequest = z.infer<typeof CreateKeyRequest>;

export const RotateKeyRequest = z.strictObject({
  /** How long the old secret keeps working, seconds (0: it stops at once; at most 30 days). */
  grace_seconds: z
    .number()
    .int()
    .min(0)
    .max(30 * 24 * 3600)
    .default(3600),
});
export type RotateKeyRequest = z.infer<typeof RotateKeyRequest>;

export type KeyActionDeps = Pick<AppDeps, 'keyStore' | 'tiers'>;

/** A new key of a known tier, expiring (if at all) in the future: the record and its secret. */
export async function createKey(
  deps: KeyActionDeps,
  log: Logger,
  body: CreateKeyRequest,
): Promise<CreatedKey> {
  if (!isTier(deps.tiers, body.tier)) {
    throw new ApiError(
      'invalid_request',
      `tier: unknown tier '${clip(body.tier)}' (${Object.keys(deps.tiers).join(', ')})`,
      { param: 'tier' },
    );
  }
  const { user, tier, ...policy } = body;
  if (policy.expires_at !== undefined && policy.expires_at <= Date.now()) {
    throw new ApiError('invalid_request', 'expires_at: must be in the future', { param: 'expires_at' });
  }
  const created = await deps.keyStore.create(user, tier, policy);
  log.info({ key_id: created.id, user_id: created.userId, tier: created.tier }, 'api_key_created');
  return created;
}

/** A new secret for key `id`; the old one works for the grace. 404 unknown, 409 revoked or expired. */
export async function rotateKey(
  deps: Pick<KeyActionDeps, 'keyStore'>,
  log: Logger,
  id: string,
  { grace_seconds }: RotateKeyRequest,
): Promise<{ created: CreatedKey; previousValidUntil: number }> {
  let rotated: CreatedKey | undefined;
  try {
    rotated = ApiKeyStore.isSecret(id) ? undefined : await deps.keyStore.rotate(id, grace_seconds * 1000);
  } catch (err) {
    if (err instanceof KeyStateError)
      throw new ApiError('conflict', `cannot rotate '${clip(id)}': ${err.message}`);
    throw err;
  }
  if (!rotated) {
    throw new ApiError(
      'not_found',
      ApiKeyStore.isSecret(id) ? 'rotate takes a key id, not a key' : `no API key '${clip(id)}'`,
    );
  }
  log.info({ key_id: rotated.id, user_id: rotated.userId, grace_s: grace_seconds }, 'api_key_rotated');
  return { created: rotated, previousValidUntil: Date.now() + grace_seconds * 1000 };
}

/** Revokes by id or by the key itself (never echoed nor logged): the revoked record. 404 if none. */
export async function revokeKey(
  deps: Pick<KeyActionDeps, 'keyStore'>,
  log: Logger,
  idOrKey: string,
): Promise<ApiKeyRecord> {
  const revoked = await deps.keyStore.revoke(idOrKey);
  if (!revoked) {
    throw new ApiError(
      'not_found',
      ApiKeyStore.isSecret(idOrKey) ? 'no such API key' : `no API key '${clip(idOrKey)}'`,
    );
  }
  log.info({ key_id: revoked.id, user_id: revoked.userId }, 'api_key_revoked');
  return revoked;
}
