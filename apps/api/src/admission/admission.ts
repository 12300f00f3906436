import { randomUUID } from 'node:crypto';
import { inSpan, type Logger } from '@llmgw/observability';
import { type Keys, utcDay, utcMonth } from '@llmgw/redis';
import { type CallerLimits, limitsOf, quotaKeyOf } from '../auth/limits-of.ts';
import { isTier, type Tiers } from '../auth/tiers.ts';
import { ApiError } from '../errors/index.ts';
import type { ApiMetrics } from '../metrics.ts';
import type { ModelRegistry } from '../models/registry.ts';
import { queueUnavailable } from '../queue/dispatcher.ts';
import { type FairShare, fairPriority } from './fair-share.ts';
import type { GenerationRequest } from './generation-request.ts';
import { refuseIfPaused } from './pause.ts';
import { estimatePromptTokens, type QuotaBook, type Reservation, type TokensPerMinute } from './quota.ts';
import { countRejection } from './rejections.ts';
import { refuseIfShed } from './shedding.ts';

interface UserAdmission {
  inflight: number;
  reservation?: Reservation;
  tokensPerMinute?: TokensPerMinute;
}

/** What admission decided for a request it let through: what the queue needs to submit it. */
export interface Admitted {
  jobId: string;
  /** The tier's priority (the job's `priority`, vLLM's BACKEND_PRIORITY). */
  priority: number;
  /** Its BullMQ priority: the tier's band plus the user's jobs in flight (fair-share.ts). */
  queuePriority: number;
  /** Jobs already waiting for the model when it was admitted. */
  waiting: number;
  /** Its share of the daily quota (and its holds), settled when the job ends. */
  reservation?: Reservation;
  /** The tokens-per-minute bucket it took from, for the `x-ratelimit-*-tokens` headers. */
  tokensPerMinute?: TokensPerMinute;
}

/** The state of a model's queue admission reads (queue/dispatcher.ts). */
export interface QueueState {
  waiting(model: string): Promise<number>;
  isPaused(model: string): Promise<boolean>;
}

export interface AdmissionOptions {
  models: Pick<ModelRegistry, 'require'>;
  /** Redis keys of the counters (daily quota, tokens per minute, monthly budget). */
  keys: Keys;
  queue: QueueState;
  fairShare: FairShare;
  quota: QuotaBook;
  tiers: Tiers;
  /** Refuse every tier with 503 server_overloaded when this many jobs already wait for the model. */
  queueMaxWaiting: number;
  /** Per tier: the model's waiting depth from which its requests are refused (shedding.ts). */
  shedAt: Record<string, number>;
  metrics: ApiMetrics;
  log: Logger;
}

/**
 * The gate before the queue: admit or throw. Refusals cheapest first, so a shed request writes
 * nothing: the model served (models/registry.ts), its queue not paused (pause.ts), its depth under
 * the tier's shed point (shedding.ts), then the user's in-flight caps (fair-share.ts) and daily
 * quota (quota.ts). Every refusal is counted (rejections.ts). It also undoes what it granted to
 * a job that never ran ({@link neverRan}): its quota and its user's place come back.
 */
export class Admission {
  constructor(private readonly opts: AdmissionOptions) {}

  /**
   * Two Redis round trips: the model's queue (depth, pause flag), then the user's share (in-flight
   * caps and daily quota, sent together). Throws ApiError. Traced as the `admission` span (a
   * refusal marks it failed with its error code).
   */
  admit(req: GenerationRequest, jobId: string = randomUUID()): Promise<Admitted> {
    const attributes = { 'llmgw.job_id': jobId, 'gen_ai.request.model': req.model, 'llmgw.tier': req.tier };
    return inSpan('admission', attributes, async (span) => {
      try {
        const admitted = await this.decide(req, jobId);
        span.setAttributes({
          'llmgw.queue.waiting': admitted.waiting,
          'llmgw.queue.priority': admitted.queuePriority,
        });
        return admitted;
      } catch (err) {
        this.count(req, err);
        throw err;
      }
    });
  }

  /**
   * The admitted request never reached the queue (the enqueue failed): its quota and its place
   * back, and the 503 counted like any refusal before the queue. Returns the error to throw.
   */
  notQueued(req: GenerationRequest, admitted: Admitted, err: unknown): ApiError {
    this.withdraw(req, admitted);
    const refusal = queueUnavailable(err, this.opts.log, req.requestId);
    this.count(req, refusal);
    return refusal;
  }

  /** Admitted, then not submitted after all (another request holds its Idempotency-Key): undone. */
  withdraw(req: GenerationRequest, admitted: Admitted): void {
    this.neverRan({ userId: req.userId, jobId: admitted.jobId, reservation: admitted.reservation });
  }

  /**
   * A job that never ran (removed from the queue before a worker took it): its whole reservation
   * and its user's place back. A job that ran is settled, and its place freed, by its worker.
   */
  neverRan(job: { userId?: string; jobId: string; reservation?: Reservation }): void {
    this.refund(job.reservation);
    if (job.userId !== undefined) this.opts.fairShare.ended(job.userId, job.jobId);
  }

  /** Gives a quota reservation back whole. */
  private refund(reservation: Reservation | undefined): void {
    if (!reservation) return;
    this.opts.quota
      .release(reservation)
      .catch((err: Error) => this.opts.log.warn({ err: err.message }, 'quota_release_failed'));
  }

  private async decide(req: GenerationRequest, jobId: string): Promise<Admitted> {
    const { models, queue, log } = this.opts;
    let waiting: number;
    let paused: boolean;
    try {
      await models.require(req.model);
      [waiting, paused] = await Promise.all([queue.waiting(req.model), queue.isPaused(req.model)]);
    } catch (err) {
      if (err instanceof ApiError) throw err;
      throw queueUnavailable(err, log, req.requestId);
    }
    refuseIfPaused(req.model, paused);
    const tier = this.tierOf(req);
    refuseIfShed(req.model, tier, waiting, this.opts);
    const limits = limitsOf(this.opts.tiers, {
      userId: req.userId ?? '',
      tier,
      keyId: req.keyId,
      grant: req.grant,
    });
    let admitted: UserAdmission = { inflight: 0 };
    if (req.userId !== undefined) admitted = await this.admitUser(req, req.userId, jobId, tier, limits);
    // vLLM's `priority` stays the tier's; the queue's order is fair share inside the tier: jobs
    // reach a backend in the fair order already.
    return {
      jobId,
      priority: limits.tier.priority,
      queuePriority: fairPriority(limits.tier.priority, admitted.inflight),
      waiting,
      reservation: admitted.reservation,
      ...(admitted.tokensPerMinute && { tokensPerMinute: admitted.tokensPerMinute }),
    };
  }

  /**
   * The user's in-flight caps and the token reservations (daily quota; tokens per minute and a
   * key's monthly budget when they apply), all sent at once (one round trip). When one refuses,
   * what the others took is given back; a spent budget or quota is reported first, since
   * retrying cannot help. Returns the user's jobs in flight before this one, and the reservation.
   */
  private async admitUser(
    req: GenerationRequest,
    userId: string,
    jobId: string,
    tier: string,
    limits: CallerLimits,
  ): Promise<UserAdmission> {
    const { fairShare, quota, keys } = this.opts;
    const now = Date.now();
    const amount = estimatePromptTokens(req) + req.params.max_tokens;
    const { tokensPerMin, monthlyBudget } = limits;
    const [share, reserved, perMinute, budget] = await Promise.allSettled([
      fairShare.admit(userId, jobId, tier, limits.tier),
      quota.reserve(
        quotaKeyOf(keys, limits.tokensPerDay, utcDay(now)),
        limits.tokensPerDay.limit,
        req,
        req.params.max_tokens,
      ),
      tokensPerMin &&
        quota.takePerMinute(keys.tokensPerMinute(tokensPerMin.scope), tokensPerMin.limit, amount),
      monthlyBudget !== undefined && req.keyId !== undefined
        ? quota.reserveBudget(keys.budget(req.keyId, utcMonth(now)), monthlyBudget, amount)
        : undefined,
    ]);
    if (
      share.status === 'fulfilled' &&
      reserved.status === 'fulfilled' &&
      perMinute.status === 'fulfilled' &&
      budget.status === 'fulfilled'
    ) {
      const holds = [perMinute.value?.hold, budget.value].filter((h) => h !== undefined);
      return {
        inflight: share.value,
        reservation: { ...reserved.value, ...(holds.length > 0 && { holds }) },
        ...(perMinute.value && { tokensPerMinute: perMinute.value }),
      };
    }
    if (share.status === 'fulfilled') fairShare.ended(userId, jobId);
    const taken = {
      key: reserved.status === 'fulfilled' ? reserved.value.key : '',
      reserved: reserved.status === 'fulfilled' ? reserved.value.reserved : 0,
      promptEstimate: 0,
      holds: [
        ...(perMinute.status === 'fulfilled' && perMinute.value ? [perMinute.value.hold] : []),
        ...(budget.status === 'fulfilled' && budget.value ? [budget.value] : []),
      ],
    };
    if (reserved.status === 'fulfilled' || taken.holds.length > 0) this.refund(taken);
    // Final refusals first (a retry cannot help), then the retryable ones.
    const errors = [budget, reserved, perMinute, share].flatMap((r) =>
      r.status === 'rejected' ? [r.reason as unknown] : [],
    );
    const refusal = errors.find((e) => e instanceof ApiError);
    if (refusal) throw refusal;
    throw queueUnavailable(errors[0], this.opts.log, req.requestId);
  }

  private count(req: GenerationRequest, err: unknown): void {
    countRejection(this.opts.metrics, req.model, this.tierOf(req), err);
  }

  private tierOf(req: GenerationRequest): string {
    return req.tier !== undefined && isTier(this.opts.tiers, req.tier) ? req.tier : 'free';
  }
}
