import { z } from 'zod';
import { ApiKeyStore, apiKeyBody, KeyPolicy, KeyStateError } from '../auth/api-keys.ts';
import { isTier } from '../auth/tiers.ts';
import { clip } from '../clip.ts';
import { ApiError } from '../errors/index.ts';
import type { AppDeps, GatewayApp } from '../hono-app.ts';
import { readJsonBody } from '../middleware/json-body.ts';

export const CreateKeyRequest = KeyPolicy.extend({
  user: z.string().min(1).max(256),
  tier: z.string().min(1).default('free'),
});

export const RotateKeyRequest = z.strictObject({
  /** How long the old secret keeps working, seconds (0: it stops at once; at most 30 days). */
  grace_seconds: z
    .number()
    .int()
    .min(0)
    .max(30 * 24 * 3600)
    .default(3600),
});

/**
 * API key administration over HTTP (the same operations as `pnpm keys`), behind ADMIN_TOKEN:
 * `POST /admin/keys` {user, tier, name?, expires_at?, models?, limits?, monthly_budget?,
 * metadata?} → the key, shown once; `GET /admin/keys`; `GET /admin/keys/:id`;
 * `POST /admin/keys/:id/rotate` {grace_seconds?} → a new secret, shown once, the old one valid
 * for the grace; `DELETE /admin/keys/:id`.
 */
export function registerAdminKeys(app: GatewayApp, deps: Pick<AppDeps, 'keyStore' | 'tiers'>): void {
  app.post('/admin/keys', async (c) => {
    const body = await readJsonBody(c, CreateKeyRequest);
    if (!isTier(deps.tiers, body.tier)) {
      throw new ApiError(
        'invalid_request',
        `tier: unknown tier '${clip(body.tier)}' (${Object.keys(deps.tiers).join(', ')})`,
        {
          param: 'tier',
        },
      );
    }
    const { user, tier, ...policy } = body;
    if (policy.expires_at !== undefined && policy.expires_at <= Date.now()) {
      throw new ApiError('invalid_request', 'expires_at: must be in the future', { param: 'expires_at' });
    }
    const created = await deps.keyStore.create(user, tier, policy);
    c.get('log').info({ key_id: created.id, user_id: created.userId, tier: created.tier }, 'api_key_created');
    return c.json(apiKeyBody(created), 201);
  });
  app.get('/admin/keys', async (c) => c.json({ data: (await deps.keyStore.list()).map(apiKeyBody) }));
  app.get('/admin/keys/:id', async (c) => {
    const id = c.req.param('id');
    const record = ApiKeyStore.isSecret(id) ? undefined : await deps.keyStore.get(id);
    if (!record)
      throw new ApiError(
        'not_found',
        ApiKeyStore.isSecret(id) ? 'no such API key' : `no API key '${clip(id)}'`,
      );
    return c.json(apiKeyBody(record));
  });
  app.post('/admin/keys/:id/rotate', async (c) => {
    const id = c.req.param('id');
    const body = await readJsonBody(c, RotateKeyRequest, { optional: true });
    let rotated: Awaited<ReturnType<ApiKeyStore['rotate']>>;
    try {
      rotated = ApiKeyStore.isSecret(id)
        ? undefined
        : await deps.keyStore.rotate(id, body.grace_seconds * 1000);
    } catch (err) {
      if (err instanceof KeyStateError)
        throw new ApiError('conflict', `cannot rotate '${clip(id)}': ${err.message}`);
      throw err;
    }
    if (!rotated)
      throw new ApiError(
        'not_found',
        ApiKeyStore.isSecret(id) ? 'rotate takes a key id, not a key' : `no API key '${clip(id)}'`,
      );
    c.get('log').info(
      { key_id: rotated.id, user_id: rotated.userId, grace_s: body.grace_seconds },
      'api_key_rotated',
    );
    return c.json(
      { ...apiKeyBody(rotated), previous_valid_until: Date.now() + body.grace_seconds * 1000 },
      201,
    );
  });
  app.delete('/admin/keys/:id', async (c) => {
    const id = c.req.param('id');
    // `id` may be the key itself: never echoed, nor logged.
    const revoked = await deps.keyStore.revoke(id);
    if (!revoked) {
      throw new ApiError(
        'not_found',
        ApiKeyStore.isSecret(id) ? 'no such API key' : `no API key '${clip(id)}'`,
      );
    }
    c.get('log').info({ key_id: revoked.id, user_id: revoked.userId }, 'api_key_revoked');
    return c.json({ id: revoked.id, revoked: true });
  });
}
