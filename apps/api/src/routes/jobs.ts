import type { Context } from 'hono';
import type { AppEnv } from '../context.ts';
import type { Owner } from '../durable/jobs.ts';
import { ApiError } from '../errors/index.ts';
import type { AppDeps, GatewayApp } from '../hono-app.ts';
import { relaySSE } from '../relay/relay.ts';

export type JobsDeps = Pick<AppDeps, 'jobs' | 'metrics' | 'canceller'>;

/**
 * `/v1/jobs`: a generation is a job, and it outlives its HTTP request.
 * - `GET /v1/jobs/{id}/events` follows it from after the frame named by `Last-Event-ID` (what
 *   EventSource sends) or `?after=N`, in the wire format of the request that submitted it, on
 *   any replica; a finished job replays whole until its log expires (JOB_RESULT_TTL_S);
 * - `GET /v1/jobs/{id}`: status, position, and once completed the non-streaming body;
 * - `POST /v1/jobs/{id}/cancel`; `GET /v1/jobs`: the caller's recent jobs.
 * Only the job's user sees it (and the admin token, under `/admin/jobs`); for anyone else it is
 * a 404.
 */
export function registerJobs(app: GatewayApp, deps: JobsDeps): void {
  const userOf = (c: Context<AppEnv>) => c.get('principal')!.userId;
  app.get('/v1/jobs', async (c) => {
    const limit = intParam(c.req.query('limit'), 'limit', 20, 1, 100);
    return c.json({ object: 'list', data: await deps.jobs.list(userOf(c), limit) });
  });
  registerJobRoutes(app, deps, '/v1/jobs', userOf);
}

/**
 * One job's routes under `base`: `/v1/jobs` for its user, `/admin/jobs` (behind the admin guard)
 * for the admin token, which sees every job.
 */
export function registerJobRoutes(
  app: GatewayApp,
  deps: JobsDeps,
  base: string,
  ownerOf: (c: Context<AppEnv>) => Owner,
): void {
  app.get(`${base}/:id`, async (c) => c.json(await deps.jobs.status(c.req.param('id'), ownerOf(c))));
  app.post(`${base}/:id/cancel`, async (c) => c.json(await deps.jobs.cancel(c.req.param('id'), ownerOf(c))));
  app.get(`${base}/:id/events`, async (c) => {
    const lastEventId = c.req.header('last-event-id');
    const after =
      lastEventId !== undefined
        ? intParam(lastEventId, 'Last-Event-ID', -1, -1, Number.MAX_SAFE_INTEGER)
        : intParam(c.req.query('after'), 'after', -1, -1, Number.MAX_SAFE_INTEGER);
    const chat = await deps.jobs.follow(c.req.param('id'), ownerOf(c));
    c.set('model', chat.model);
    return relaySSE(c, chat, deps, after);
  });
}

/**
 * A plain decimal integer from `min` to `max` (absent: `def`). Not Number()'s reading: it takes
 * `''` as 0 (an empty `after` would skip frame 0), and `0x10`, `1e3`, `+7` as numbers.
 */
function intParam(raw: string | undefined, name: string, def: number, min: number, max: number): number {
  if (raw === undefined) return def;
  const n = /^-?\d{1,16}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new ApiError('invalid_request', `${name} must be an integer from ${min} to ${max}`, {
      param: name,
    });
  }
  return n;
}
