import type { Context, MiddlewareHandler } from 'hono';
import { describeRoute } from 'hono-openapi';
import type { AppEnv } from '../context.ts';
import { JobCancelled, JobList, JobStatusBody } from '../durable/job-bodies.ts';
import type { Owner } from '../durable/jobs.ts';
import { ApiError } from '../errors/index.ts';
import type { AppDeps, GatewayApp } from '../hono-app.ts';
import {
  API_KEY_SECURITY,
  errorResponses,
  eventStream,
  GUARDED,
  json,
  SSE_DESCRIPTION,
} from '../openapi/describe.ts';
import { relaySSE } from '../relay/relay.ts';
import { AnyFrame } from '../wire/rendition.ts';

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
  const listDoc = describeRoute({
    tags: ['jobs'],
    summary: "The caller's recent jobs, newest first",
    security: API_KEY_SECURITY,
    parameters: [
      {
        in: 'query',
        name: 'limit',
        required: false,
        schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
      },
    ],
    responses: {
      200: { description: 'the jobs', content: json(JobList) },
      ...errorResponses('openai', [400, ...GUARDED]),
    },
  });
  app.get('/v1/jobs', listDoc, async (c) => {
    const limit = intParam(c.req.query('limit'), 'limit', 20, 1, 100);
    return c.json({ object: 'list', data: await deps.jobs.list(userOf(c), limit) });
  });
  registerJobRoutes(app, deps, '/v1/jobs', userOf, JOB_DOCS);
}

const jobId = { in: 'path' as const, name: 'id', required: true, schema: { type: 'string' as const } };
const jobDoc = (summary: string, responses: Parameters<typeof describeRoute>[0]['responses'], more = {}) =>
  describeRoute({
    tags: ['jobs'],
    summary,
    security: API_KEY_SECURITY,
    parameters: [jobId],
    ...more,
    responses: { ...responses, ...errorResponses('openai', [404, ...GUARDED]) },
  });

/** What `/v1/jobs/{id}…` answer (the admin's `/admin/jobs` copies are not in the public document). */
const JOB_DOCS: JobDocs = {
  status: jobDoc('Where the job stands; once completed, its answer', {
    200: { description: 'the job', content: json(JobStatusBody) },
  }),
  cancel: jobDoc('Cancel the job (a finished one stays as it was)', {
    200: { description: 'its state after the cancel', content: json(JobCancelled) },
  }),
  events: jobDoc(
    'Follow the job: its frames after Last-Event-ID (or ?after=N), replayed then live',
    {
      200: {
        description: `The stream, in the wire format of the request that submitted the job. ${SSE_DESCRIPTION}`,
        content: eventStream(AnyFrame),
      },
      ...errorResponses('openai', [400, 410]),
    },
    {
      parameters: [
        jobId,
        { in: 'header', name: 'Last-Event-ID', required: false, schema: { type: 'integer', minimum: -1 } },
        {
          in: 'query',
          name: 'after',
          required: false,
          schema: { type: 'integer', minimum: -1, default: -1 },
        },
      ],
    },
  ),
};

interface JobDocs {
  status: MiddlewareHandler;
  cancel: MiddlewareHandler;
  events: MiddlewareHandler;
}

const undocumented: MiddlewareHandler = async (_c, next) => next();

/**
 * One job's routes under `base`: `/v1/jobs` for its user, `/admin/jobs` (behind the admin guard)
 * for the admin token, which sees every job.
 */
export function registerJobRoutes(
  app: GatewayApp,
  deps: JobsDeps,
  base: string,
  ownerOf: (c: Context<AppEnv>) => Owner,
  docs: JobDocs = { status: undocumented, cancel: undocumented, events: undocumented },
): void {
  app.get(`${base}/:id`, docs.status, async (c) =>
    c.json(await deps.jobs.status(c.req.param('id'), ownerOf(c))),
  );
  app.post(`${base}/:id/cancel`, docs.cancel, async (c) =>
    c.json(await deps.jobs.cancel(c.req.param('id'), ownerOf(c))),
  );
  app.get(`${base}/:id/events`, docs.events, async (c) => {
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
