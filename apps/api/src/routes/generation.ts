import { randomUUID } from 'node:crypto';
import { isEmptyMessage } from '@llmgw/protocol';
import type { Context } from 'hono';
import type { GenerationRequest } from '../admission/generation-request.ts';
import { clip } from '../clip.ts';
import type { AppEnv, KeyGrant } from '../context.ts';
import { Idempotency } from '../durable/idempotency.ts';
import { ApiError } from '../errors/index.ts';
import type { AppDeps } from '../hono-app.ts';
import type { SubmittedChat } from '../queue/submitted-chat.ts';
import { watchClient } from '../relay/client-link.ts';
import { respond } from '../relay/relay.ts';

/** What a generation route needs: admission, the queue, the relay, and jobs to attach to again. */
export type GenerationDeps = Pick<
  AppDeps,
  'defaultModel' | 'admission' | 'submitter' | 'metrics' | 'canceller' | 'idempotency' | 'jobs'
>;

export type RouteInput = Omit<
  GenerationRequest,
  'model' | 'requestId' | 'userId' | 'tier' | 'keyId' | 'grant'
> & {
  /** As the request named it; absent: DEFAULT_MODEL. */
  model: string | undefined;
};

/**
 * Every generation route once its body is read: admit → submit → respond (relay/relay.ts).
 * Before them: the model (default if none), one rule for an empty conversation on every
 * endpoint, and the authenticated caller as the user — a user id or tier in the body or headers
 * claims nothing. With an `Idempotency-Key` a retry attaches to the job its first try started.
 */
export async function generate(c: Context<AppEnv>, deps: GenerationDeps, input: RouteInput, body: unknown) {
  const model = input.model ?? deps.defaultModel;
  c.set('model', model);
  if ((input.kind ?? 'chat') === 'chat' && input.messages.every(isEmptyMessage)) {
    throw new ApiError('invalid_request', 'messages: every message is empty', { param: 'messages' });
  }
  const { userId, tier, keyId, grant } = c.get('principal')!;
  refuseIfNotAllowed(model, grant);
  const req: GenerationRequest = {
    ...input,
    model,
    requestId: c.get('requestId'),
    userId,
    tier,
    ...(keyId !== undefined && { keyId }),
    ...(grant !== undefined && { grant }),
  };
  // The client is watched from here: one that leaves during admission is not followed later.
  const client = watchClient(c);
  if (!req.answer.async && resumeRequested(c)) {
    req.answer.resumable = true;
    c.header('Preference-Applied', 'resumable');
  }
  const chat = await submitOnce(c, deps, req, body);
  for (const [k, v] of Object.entries(chat.limitHeaders ?? {})) c.header(k, v);
  if (chat.follower && req.answer.async) {
    // An async retry: where the first try's job stands now (maybe finished), not "queued".
    chat.sub.close();
    c.header('X-Job-ID', chat.jobId);
    c.header('Location', `/v1/jobs/${chat.jobId}`);
    return c.json(await deps.jobs.status(chat.jobId, userId), 202);
  }
  return respond(c, chat, deps, req.answer.stream, client);
}

/** A key with a model allowlist may use only those models: 403 `model_not_allowed` otherwise. */
export function refuseIfNotAllowed(model: string, grant: KeyGrant | undefined): void {
  if (grant?.models && !grant.models.includes(model)) {
    throw new ApiError('model_not_allowed', `this API key may not use model '${clip(model)}'`, {
      param: 'model',
    });
  }
}

/**
 * Whether the request asked its generation to outlive a dropped connection (for RESUME_GRACE_MS):
 * `Prefer: resumable`, or an `Idempotency-Key`, which says "I will retry this" — its retry
 * attaches to the running job, so the job must still run when the retry comes. Without either,
 * a client that closes its connection stops its generation at once (docs/api.md).
 */
function resumeRequested(c: Context<AppEnv>): boolean {
  return c.req.header('idempotency-key') !== undefined || prefers(c.req.header('prefer'), 'resumable');
}

/** How long a retry waits for the request that holds its Idempotency-Key to submit its job. */
const CLAIM_WAIT_MS = 5000;
const CLAIM_POLL_MS = 20;

/**
 * With an `Idempotency-Key`, the key is claimed before admission: of concurrent retries, one
 * takes a concurrency place and a quota reservation and submits the job; the others attach to
 * it (waiting the moment it takes to be submitted) instead of being refused for the places the
 * first one holds. A claim whose request was refused is released, and a waiting retry then tries
 * for itself.
 */
async function submitOnce(
  c: Context<AppEnv>,
  deps: GenerationDeps,
  req: GenerationRequest,
  body: unknown,
): Promise<SubmittedChat> {
  const key = Idempotency.keyOf(c.req.header('idempotency-key'));
  if (key === undefined || req.userId === undefined) {
    return deps.submitter.submit(req, await deps.admission.admit(req));
  }
  const { userId } = req;
  const digest = Idempotency.digest(c.req.method, c.req.path, body);
  const deadline = Date.now() + CLAIM_WAIT_MS;
  for (;;) {
    const jobId = randomUUID();
    const holder = await deps.idempotency.claim(userId, key, digest, jobId);
    if (holder === undefined) return submitClaimed(deps, req, userId, key, jobId);
    const attached = await attachWhenSubmitted(c, deps, holder, userId, key, digest, deadline);
    if (attached) return attached;
  }
}

/** This request holds the key for `jobId`: admitted and submitted, or the key released. */
async function submitClaimed(
  deps: GenerationDeps,
  req: GenerationRequest,
  userId: string,
  key: string,
  jobId: string,
): Promise<SubmittedChat> {
  try {
    return await deps.submitter.submit(req, await deps.admission.admit(req, jobId));
  } catch (err) {
    await deps.idempotency.release(userId, key, jobId).catch(() => {});
    throw err;
  }
}

/**
 * Attaches to the job that holds the key once its record exists (it is written before the
 * enqueue). Undefined when the key was released meanwhile (that request was refused): the caller
 * claims it again. A holder that neither submits nor releases within CLAIM_WAIT_MS gets a 409.
 */
async function attachWhenSubmitted(
  c: Context<AppEnv>,
  deps: GenerationDeps,
  holder: string,
  userId: string,
  key: string,
  digest: string,
  deadline: number,
): Promise<SubmittedChat | undefined> {
  for (;;) {
    try {
      return await attach(c, deps, holder, userId);
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 'not_found')) throw err;
    }
    if ((await deps.idempotency.existing(userId, key, digest)) !== holder) return undefined;
    if (Date.now() > deadline) {
      throw new ApiError(
        'idempotency_key_in_use',
        'another request with this Idempotency-Key is still being admitted; retry shortly',
        { headers: { 'Retry-After': '1' } },
      );
    }
    await new Promise((r) => setTimeout(r, CLAIM_POLL_MS));
  }
}

/** A retry with the same Idempotency-Key: the first try's job, replayed then followed. */
async function attach(c: Context<AppEnv>, deps: GenerationDeps, jobId: string, userId: string) {
  const chat = await deps.jobs.follow(jobId, userId);
  c.get('log').info({ job_id: jobId }, 'idempotent_replay');
  c.header('Idempotent-Replayed', 'true');
  return chat;
}

/** `Prefer: respond-async` (RFC 7240), among other preferences. */
export const prefersAsync = (prefer: string | undefined): boolean => prefers(prefer, 'respond-async');

/** Whether a `Prefer` header (RFC 7240) holds the preference `token`, whatever its parameters. */
function prefers(prefer: string | undefined, token: string): boolean {
  return (
    prefer?.split(',').some(
      (p) =>
        p
          .trim()
          .split(/[\s;=]/)[0]
          ?.toLowerCase() === token,
    ) ?? false
  );
}
