import { JOB_VERSION } from '@llmgw/protocol';
import { describe, expect, it } from 'vitest';
import { isSummary, summarize } from './job-summary.ts';

describe('job summary (what BullMQ keeps of a finished job)', () => {
  it('keeps who, what model, how it ended and how big it was; never the messages', () => {
    const data = {
      v: JOB_VERSION,
      kind: 'chat',
      replyTo: 'p:job:{j}:ch',
      requestId: 'req-1',
      model: 'm',
      userId: 'alice',
      tier: 'pro',
      enqueuedAt: 1,
      messages: [{ role: 'user', content: 'x'.repeat(10_000) }],
      params: { max_tokens: 4 },
      quota: { key: 'q', reserved: 10, promptEstimate: 3 },
    };
    const s = summarize(data, 'failed', { error: 'backend_bad_request' });
    expect(s).toEqual({
      ended: 'failed',
      v: JOB_VERSION,
      requestId: 'req-1',
      model: 'm',
      userId: 'alice',
      tier: 'pro',
      kind: 'chat',
      enqueuedAt: 1,
      messages: 1,
      payloadBytes: Buffer.byteLength(JSON.stringify(data)),
      error: 'backend_bad_request',
    });
    expect(JSON.stringify(s).length).toBeLessThan(300);
    expect(isSummary(s)).toBe(true);
    expect(isSummary(data)).toBe(false);
  });

  it('summarizes any payload, even one that is not a job', () => {
    expect(summarize(null, 'invalid')).toEqual({ ended: 'invalid', payloadBytes: 4 });
    expect(summarize({ v: 2, model: 7 }, 'invalid')).toEqual({ ended: 'invalid', v: 2, payloadBytes: 17 });
  });
});
