import type { Reservation } from './quota.ts';
import type { StreamMeter } from './stream-meter.ts';
import type { JobSubscription } from './subscription.ts';

/**
 * One request's job once it is on its model's queue: what the chat service, the queue watch and
 * the relay all hold. Its own module so that neither of the first two imports the other for it.
 */
export interface SubmittedChat {
  jobId: string;
  model: string;
  sub: JobSubscription;
  enqueuedAt: number;
  /** performance.now() once enqueued. */
  enqueuedAtPerf: number;
  reservation?: Reservation;
  meter: StreamMeter;
}
