import type { JobEvent } from '@llmgw/protocol';
import { describe, expect, it } from 'vitest';
import { foldEvents } from './jobs.ts';

const ev = (seq: number, attempt: number, rest: Partial<JobEvent> & Pick<JobEvent, 'type'>): JobEvent =>
  ({ id: 'j', seq, attempt, ...rest }) as JobEvent;
const started = (seq: number, attempt = 1) => ev(seq, attempt, { type: 'started', worker: 'w' });
const token = (seq: number, t: string, attempt = 1) =>
  ev(seq, attempt, { type: 'delta', d: [{ k: 'text', t }] });
const usage = { promptTokens: 4, completionTokens: 600 };
const done = (seq: number, attempt = 1) => ev(seq, attempt, { type: 'done', finishReason: 'stop', usage });
const text = (events: JobEvent[], opts?: { trimmed?: boolean }) => {
  const fold = foldEvents(events, opts);
  return { status: fold.status, text: fold.transcript.text, error: fold.error };
};

/** The status route's view of a log: as strict about sequence numbers as the live stream. */
describe('foldEvents', () => {
  it('a whole log: completed with all its text', () => {
    expect(text([started(0), token(1, 'a'), token(2, 'b'), done(3)])).toMatchObject({
      status: 'completed',
      text: 'ab',
    });
  });

  it('a log with a hole in its middle is failed, with the reason and the usage — never completed with text missing', () => {
    const fold = foldEvents([started(0), token(1, 'a'), token(4, 'd'), done(5)]);
    expect(fold.status).toBe('failed');
    expect(fold.done).toBeUndefined();
    expect(fold.error).toMatchObject({ error: 'internal_error', usage });
    expect(fold.error?.message).toMatch(/missing 2 event\(s\)/);
  });

  it('a hole and no end yet: failed, and marked as not ended (the job may still run)', () => {
    const fold = foldEvents([started(0), token(2, 'b')]);
    expect(fold).toMatchObject({ status: 'failed', unended: true });
  });

  it("a hole before the job's own error: that error", () => {
    const end = ev(6, 1, { type: 'error', error: 'internal_error', message: 'could not be written' });
    expect(text([started(0), token(1, 'a'), end]).error).toMatchObject({ message: 'could not be written' });
  });

  it('duplicates (a write retried after Redis took it) are skipped', () => {
    expect(text([started(0), token(1, 'a'), token(1, 'a'), token(2, 'b'), done(3), done(3)])).toMatchObject({
      status: 'completed',
      text: 'ab',
    });
  });

  it('a log trimmed at JOB_LOG_MAX_EVENTS starts where it starts', () => {
    expect(text([token(7, 'h'), token(8, 'i'), done(9)], { trimmed: true })).toMatchObject({
      status: 'completed',
    });
    expect(text([token(7, 'h'), done(9)], { trimmed: true }).status).toBe('failed');
  });

  it('a re-run starts over: a hole in an earlier attempt does not fail a whole later one', () => {
    expect(
      text([started(0, 1), ev(2, 1, { type: 'requeued', error: 'backend_error', message: 'x' })]).status,
    ).toBe('queued');
    expect(
      text([started(0, 1), token(3, 'lost', 1), started(0, 2), token(1, 'x', 2), done(2, 2)]),
    ).toMatchObject({ status: 'completed', text: 'x' });
  });

  it('a gateway end (owner cancel) reports what the worker, aborting the job after it, says it used', () => {
    const gateway = ev(0, 0, {
      type: 'error',
      error: 'cancelled',
      message: 'cancelled by its owner',
      gateway: true,
    });
    const aborted = ev(3, 1, {
      type: 'error',
      error: 'cancelled',
      message: 'generation cancelled',
      usage: { promptTokens: 9, completionTokens: 2 },
    });
    const fold = foldEvents([started(0), token(1, 'a'), token(2, 'b'), gateway, aborted]);
    expect(fold.status).toBe('cancelled');
    expect(fold.error).toMatchObject({
      message: 'cancelled by its owner',
      usage: { promptTokens: 9, completionTokens: 2 },
    });
    // Removed before it ran: the gateway's own end says it used nothing; no worker end follows.
    const unrun = { ...gateway, usage: { promptTokens: 0, completionTokens: 0 } } as JobEvent;
    expect(foldEvents([unrun]).error?.usage).toEqual({ promptTokens: 0, completionTokens: 0 });
    // Still running (its worker's end not in yet): no usage to tell.
    expect(foldEvents([started(0), gateway]).error?.usage).toBeUndefined();
  });
});
