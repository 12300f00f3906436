import type { JobEvent } from '@llmgw/protocol';
import { describe, expect, it } from 'vitest';
import { JobSubscription } from './subscription.ts';

const ev = (seq: number, attempt: number, rest: Partial<JobEvent> & Pick<JobEvent, 'type'>): JobEvent =>
  ({ id: 'j', seq, attempt, ...rest }) as JobEvent;
const started = (seq: number, attempt = 1) => ev(seq, attempt, { type: 'started', worker: 'w' });
const token = (seq: number, t: string, attempt = 1) =>
  ev(seq, attempt, { type: 'delta', d: [{ k: 'text', t }] });
const done = (seq: number, attempt = 1) =>
  ev(seq, attempt, { type: 'done', finishReason: 'stop', usage: { promptTokens: 1, completionTokens: 1 } });

async function drain(sub: JobSubscription): Promise<JobEvent[]> {
  const out: JobEvent[] = [];
  for await (const batch of sub) out.push(...batch);
  return out;
}

const texts = (events: JobEvent[]) =>
  events.flatMap((e) => (e.type === 'delta' ? e.d.flatMap((d) => (d.k === 'text' ? [d.t] : [])) : []));
const last = (events: JobEvent[]) => events[events.length - 1];

describe('JobSubscription', () => {
  it('passes events in order and ends at done', async () => {
    const sub = new JobSubscription('j', () => {});
    for (const e of [started(0), token(1, 'a'), token(2, 'b'), done(3)]) sub.deliver(e);
    const events = await drain(sub);
    expect(texts(events)).toEqual(['a', 'b']);
    expect(last(events)?.type).toBe('done');
  });

  it('drops duplicates and swallows heartbeats', async () => {
    const sub = new JobSubscription('j', () => {});
    for (const e of [
      started(0),
      token(1, 'a'),
      token(1, 'a'),
      ev(2, 1, { type: 'heartbeat' }),
      token(3, 'b'),
      done(4),
    ]) {
      sub.deliver(e);
    }
    expect(texts(await drain(sub))).toEqual(['a', 'b']);
  });

  it('ends with an error on a gap instead of silently missing text', async () => {
    const sub = new JobSubscription('j', () => {});
    for (const e of [started(0), token(1, 'a'), token(3, 'c'), done(4)]) sub.deliver(e);
    const events = await drain(sub);
    expect(texts(events)).toEqual(['a']);
    expect(last(events)).toMatchObject({ type: 'error', error: 'internal_error' });
  });

  it('follows a re-run that started before any text reached the client', async () => {
    const sub = new JobSubscription('j', () => {});
    for (const e of [started(0, 1), started(0, 2), token(1, 'x', 2), token(1, 'stale', 1), done(2, 2)])
      sub.deliver(e);
    const events = await drain(sub);
    expect(texts(events)).toEqual(['x']);
    expect(last(events)?.type).toBe('done');
  });

  it('refuses a re-run after text was relayed: worker_lost, never duplicated text', async () => {
    const sub = new JobSubscription('j', () => {});
    for (const e of [started(0, 1), token(1, 'a', 1), started(0, 2), token(1, 'a', 2), done(2, 2)])
      sub.deliver(e);
    const events = await drain(sub);
    expect(texts(events)).toEqual(['a']);
    expect(last(events)).toMatchObject({ type: 'error', error: 'worker_lost' });
  });

  it('unregisters itself once, when closed or drained', async () => {
    let closed = 0;
    const sub = new JobSubscription('j', () => closed++);
    sub.deliver(started(0));
    sub.deliver(done(1));
    await drain(sub);
    sub.close();
    expect(closed).toBe(1);
  });

  it('a follower: live events held while the log is read, then log and live merged — nothing lost, nothing twice', async () => {
    const sub = new JobSubscription('j', () => {});
    sub.holdLive();
    // Arrived live while the log was being read: 2 and 3 are in the log too, 4 only live.
    for (const e of [token(2, 'b'), token(3, 'c'), done(4)]) sub.deliver(e);
    sub.replay([started(0), token(1, 'a'), token(2, 'b'), token(3, 'c')]);
    const events = await drain(sub);
    expect(texts(events)).toEqual(['a', 'b', 'c']);
    expect(last(events)?.type).toBe('done');
  });

  it("an end written by the gateway (deadline, owner's cancel) ends the stream whatever the attempt", async () => {
    const sub = new JobSubscription('j', () => {});
    sub.deliver(started(0, 2));
    sub.deliver({
      id: 'j',
      seq: 0,
      attempt: 0,
      type: 'error',
      error: 'cancelled',
      message: 'by owner',
      gateway: true,
    });
    const events = await drain(sub);
    expect(last(events)).toMatchObject({ type: 'error', error: 'cancelled' });
  });

  it('a gap is filled from the log: live events held meanwhile, the whole text in order', async () => {
    // What a worker wrote while this api's subscriber was reconnecting is in the log only.
    const log = [started(0), token(1, 'a'), token(2, 'b'), token(3, 'c'), token(4, 'd')];
    let reads = 0;
    const sub = new JobSubscription(
      'j',
      () => {},
      async () => {
        reads++;
        await new Promise((r) => setTimeout(r, 10));
        return log;
      },
    );
    for (const e of [started(0), token(1, 'a'), token(4, 'd'), token(5, 'e'), done(6)]) sub.deliver(e);
    const events = await drain(sub);
    expect(texts(events)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(last(events)?.type).toBe('done');
    expect(reads).toBe(1);
  });

  it('a gap the log cannot fill either ends the stream with an error', async () => {
    const sub = new JobSubscription(
      'j',
      () => {},
      async () => [started(0), token(1, 'a'), token(3, 'c')],
    );
    for (const e of [started(0), token(1, 'a'), token(3, 'c'), done(4)]) sub.deliver(e);
    const events = await drain(sub);
    expect(texts(events)).toEqual(['a']);
    expect(last(events)).toMatchObject({ type: 'error', error: 'internal_error' });
  });

  it("a gap before the job's own error: the stream ends with that error, which says why", async () => {
    const end = ev(5, 1, { type: 'error', error: 'internal_error', message: 'events could not be written' });
    const sub = new JobSubscription(
      'j',
      () => {},
      async () => [started(0), token(1, 'a'), end],
    );
    for (const e of [started(0), token(1, 'a'), end]) sub.deliver(e);
    const events = await drain(sub);
    expect(texts(events)).toEqual(['a']);
    expect(last(events)).toMatchObject({ type: 'error', message: 'events could not be written' });
  });

  it('catchUp (the subscriber reconnected): what was published meanwhile, the end included, comes from the log', async () => {
    const sub = new JobSubscription(
      'j',
      () => {},
      async () => [started(0), token(1, 'a'), token(2, 'b'), done(3)],
    );
    sub.deliver(started(0));
    sub.deliver(token(1, 'a'));
    // Nothing more arrives live: the rest was published while the connection was down.
    sub.catchUp();
    const events = await drain(sub);
    expect(texts(events)).toEqual(['a', 'b']);
    expect(last(events)?.type).toBe('done');
  });
});
