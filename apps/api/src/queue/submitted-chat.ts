import type { Reservation } from '../admission/quota.ts';
import type { JobSubscription } from '../reply/subscription.ts';
import type { Rendition } from '../wire/rendition.ts';

/**
 * One request's job once it is on its model's queue, or a job followed again (resume,
 * idempotent retry): what the submitter, the queue watch, the canceller and the relay all hold.
 * Its own module so that none of them imports another for it.
 */
export interface SubmittedChat {
  jobId: string;
  model: string;
  /** Its user (the authenticated caller), whose place the job holds. */
  userId?: string;
  /** The API key it came with (public id): whose usage it is. */
  keyId?: string;
  sub: JobSubscription;
  enqueuedAt: number;
  /** performance.now() once enqueued (or once followed again). */
  enqueuedAtPerf: number;
  reservation?: Reservation;
  /** Response headers of its admission (the `x-ratelimit-*-tokens` of tokens per minute). */
  limitHeaders?: Record<string, string>;
  /** How its answer is spelled (the submitting request's wire format). */
  rendition: Rendition;
  /** Submitted with `Prefer: respond-async`: nobody's disconnect cancels it. */
  async?: boolean;
  /** `Prefer: resumable` or an Idempotency-Key: its client's leaving starts RESUME_GRACE_MS. */
  resumable?: boolean;
  /** Not the request that submitted it (a resume or a retry): its leaving never cancels the job. */
  follower?: boolean;
  /** Queue position when submitted (1 = next). */
  position?: number;
}
