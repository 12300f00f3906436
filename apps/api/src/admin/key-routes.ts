import { z } from 'zod';
import { ApiKeyStore, apiKeyBody } from '../auth/api-keys.ts';
import { isTier } from '../auth/tiers.ts';
import { clip } from '../clip.ts';
import { ApiError } from '../errors/index.ts';
import type { AppDeps, GatewayApp } from '../hono-app.ts';
import { readJsonBody } from '../middleware/json-body.ts';

export const CreateKeyRequest = z.object({
  user: z.string().min(1).max(256),
  tier: z.string().min(1).default('free'),
});

/**
 * API key administration over HTTP (the same operations as `pnpm keys`), behind ADMIN_TOKEN:
 * `POST /admin/keys` {user, tier} → the key, shown once; `GET /admin/keys`; `DELETE /admin/keys/:id`.
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
    const created = await deps.keyStore.create(body.user, body.tier);
    c.get('log').info({ key_id: created.id, user_id: created.userId, tier: created.tier }, 'api_key_created');
    return c.json(apiKeyBody(created), 201);
  });
  app.get('/admin/keys', async (c) => c.json({ data: (await deps.keyStore.list()).map(apiKeyBody) }));
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
