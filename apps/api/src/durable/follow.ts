import { ApiError } from '../errors/index.ts';
import type { SubmittedChat } from '../queue/submitted-chat.ts';
import type { ReplyHub } from '../reply/reply-hub.ts';
import type { EventLog } from './event-log.ts';
import type { JobRecord } from './job-record.ts';

export interface FollowDeps {
  hub: Pick<ReplyHub, 'open'>;
  log: Pick<EventLog, 'read'>;
}

/**
 * Follows a job from its first event, on any replica: its channel subscribed first (live events
 * held), then its log replayed, then live — nothing lost between the two, nothing repeated (the
 * subscription drops what it already has). A finished job replays whole and ends.
 */
export async function follow(deps: FollowDeps, rec: JobRecord): Promise<SubmittedChat> {
  const sub = await deps.hub.open(rec.id, { holdLive: true });
  let logged: Awaited<ReturnType<EventLog['read']>>;
  try {
    logged = await deps.log.read(rec.id);
  } catch (err) {
    sub.close();
    throw err;
  }
  if (!logged.complete) {
    sub.close();
    throw new ApiError(
      'job_log_trimmed',
      'this job produced more events than its log keeps (JOB_LOG_MAX_EVENTS): it cannot be replayed',
    );
  }
  sub.replay(logged.events);
  return {
    jobId: rec.id,
    model: rec.model,
    sub,
    enqueuedAt: rec.createdAt,
    enqueuedAtPerf: performance.now(),
    rendition: rec.rendition,
    follower: true,
  };
}
