import { ApiKeyStore, apiKeyBody } from '../auth/api-keys.ts';
import { clip } from '../clip.ts';
import { ApiError } from '../errors/index.ts';
import type { GatewayApp } from '../hono-app.ts';
import { readJsonBody } from '../middleware/json-body.ts';
import {
  CreateKeyRequest,
  createKey,
  type KeyActionDeps,
  RotateKeyRequest,
  revokeKey,
  rotateKey,
} from './key-actions.ts';

/**
 * API key administration over HTTP (the same operations as `pnpm keys` and the admin page), behind
 * ADMIN_TOKEN: `POST /admin/keys` {user, tier, name?, expires_at?, models?, limits?,
 * monthly_budget?, metadata?} → the key, shown once; `GET /admin/keys`; `GET /admin/keys/:id`;
 * `POST /admin/keys/:id/rotate` {grace_seconds?} → a new secret, shown once, the old one valid
 * for the grace; `DELETE /admin/keys/:id`. The checks and logs are key-actions.ts's.
 */
export function registerAdminKeys(app: GatewayApp, deps: KeyActionDeps): void {
  app.post('/admin/keys', async (c) => {
    const body = await readJsonBody(c, CreateKeyRequest);
    return c.json(apiKeyBody(await createKey(deps, c.get('log'), body)), 201);
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
    const body = await readJsonBody(c, RotateKeyRequest, { optional: true });
    const { created, previousValidUntil } = await rotateKey(deps, c.get('log'), c.req.param('id'), body);
    return c.json({ ...apiKeyBody(created), previous_valid_until: previousValidUntil }, 201);
  });
  app.delete('/admin/keys/:id', async (c) => {
    // `id` may be the key itself: never echoed, nor logged.
    const revoked = await revokeKey(deps, c.get('log'), c.req.param('id'));
    return c.json({ id: revoked.id, revoked: true });
  });
}
