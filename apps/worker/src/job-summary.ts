import type { ErrorType, Usage } from '@llmgw/protocol';
import type { Job } from 'bullmq';

/**
 * What a BullMQ job holds as its data once it has ended for good (completed, failed, cancelled,
 * expired, refused as invalid): the request's payload — its messages, up to BODY_LIMIT_BYTES —
 * is replaced by this. BullMQ keeps finished jobs for inspection (dispatcher.ts KEEP_COMPLETED,
 * KEEP_FAILED: up to 6,000 jobs for up to 24 h); with their payload, a user who sends large
 * prompts the backend refuses would hold megabytes each at no quota cost. Bull Board still shows
 * whose job it was, for what model, how it ended and how big it was; the answer itself is in the
 * job's event log (`GET /v1/jobs/{id}`) for JOB_RESULT_TTL_S.
 */
export interface JobSummary {
  /** Marks the data as a summary: a worker handed this job again refuses it. */
  ended: 'completed' | 'failed' | 'cancelled' | 'expired' | 'invalid';
  /** The job payload's version (JOB_VERSION when valid). */
  v?: unknown;
  requestId?: string;
  model?: string;
  userId?: string;
  tier?: string;
  kind?: string;
  enqueuedAt?: number;
  /** Messages in the conversation. */
  messages?: number;
  /** Size of the payload that was dropped (its JSON). */
  payloadBytes: number;
  error?: ErrorType;
  usage?: Usage;
}

/** True for data a worker replaced with a {@link JobSummary}. */
export function isSummary(data: unknown): data is JobSummary {
  return typeof data === 'object' && data !== null && typeof (data as JobSummary).ended === 'string';
}

/** The summary of a job's data (whatever it held, even an invalid payload). */
export function summarize(
  data: unknown,
  ended: JobSummary['ended'],
  extra: { error?: ErrorType | undefined; usage?: Usage | undefined } = {},
): JobSummary {
  const d = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
  const str = (k: string) => (typeof d[k] === 'string' ? (d[k] as string) : undefined);
  const payload = JSON.stringify(data) ?? '';
  const summary: JobSummary = { ended, payloadBytes: Buffer.byteLength(payload) };
  if (d.v !== undefined) summary.v = d.v;
  for (const k of ['requestId', 'model', 'userId', 'tier', 'kind'] as const) {
    const value = str(k);
    if (value !== undefined) summary[k] = value;
  }
  if (typeof d.enqueuedAt === 'number') summary.enqueuedAt = d.enqueuedAt;
  if (Array.isArray(d.messages)) summary.messages = d.messages.length;
  if (extra.error !== undefined) summary.error = extra.error;
  if (extra.usage !== undefined) summary.usage = extra.usage;
  return summary;
}

/**
 * Replaces the job's data with its summary, before BullMQ moves it to completed or failed. Best
 * effort: a job whose data could not be replaced keeps its payload until BullMQ removes it.
 */
export async function keepSummaryOnly(job: Job, summary: JobSummary): Promise<boolean> {
  try {
    await job.updateData(summary);
    return true;
  } catch {
    return false;
  }
}
