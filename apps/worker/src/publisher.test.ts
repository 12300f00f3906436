import { randomUUID } from 'node:crypto';
import { deleteKeysWithPrefix, until } from '@llmgw/devkit';
import { createLogger } from '@llmgw/observability';
import { decodeEvent, type JobEvent } from '@llmgw/protocol';
import { createRedis, quitQuietly } from '@llmgw/redis';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { JobPublisher } from './publisher.ts';

/** The publisher against a real Redis: what a subscriber of the reply channel receives. */
describe('JobPublisher', () => {
  const prefix = `test-${randomUUID()}`;
  const channel = `${prefix}:reply:publisher`;
  const log = createLogger({ service: 'worker', instance: 'pub-test', level: 'silent' });
  let redis: Redis;
  let sub: Redis;
  const received: JobEvent[] = [];

  beforeAll(async () => {
    redis = createRedis(inject('redisUrl'), 'publisher', 'pub-test');
    sub = createRedis(inject('redisUrl'), 'subscriber', 'pub-test-sub');
    sub.on('message', (_ch, raw: string) => {
      const ev = decodeEvent(raw);
      if (ev) received.push(ev);
    });
    await sub.subscribe(channel);
  });
  afterAll(async () => {
    await quitQuietly(sub);
    await quitQuietly(redis);
    await deleteKeysWithPrefix(inject('redisUrl'), prefix);
  });

  const eventsOf = (id: string) => received.filter((e) => e.id === id);
  const publisher = (id: string, heartbeatMs = 60_000) =>
    new JobPublisher(redis, channel, id, 1, log, heartbeatMs);

  it('a burst keeps its order, merges neighbours of one kind only, and ends after what was pending', async () => {
    const id = randomUUID();
    const p = publisher(id);
    p.started('w-1');
    const burst = [
      { k: 'reasoning', t: 'think ' },
      { k: 'reasoning', t: 'more' },
      { k: 'text', t: 'Hel' },
      { k: 'text', t: 'lo' },
      { k: 'tool', i: 0, id: 'call_1', name: 'get_weather', args: '{"ci' },
      { k: 'tool', i: 0, args: 'ty":"Oslo"}' },
      { k: 'text', t: '!' },
    ] as const;
    for (const d of burst) p.delta(d);
    await p.end({
      type: 'done',
      finishReason: 'stop',
      usage: { promptTokens: 1, completionTokens: 7 },
      ttftMs: 1,
      genMs: 1,
    });
    await until(() => eventsOf(id).some((e) => e.type === 'done'));

    const events = eventsOf(id);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i));
    expect(events[0]).toMatchObject({ type: 'started', worker: 'w-1', attempt: 1 });
    expect(events.at(-1)?.type).toBe('done');
    const deltas = events.flatMap((e) => (e.type === 'delta' ? e.d : []));
    // One turn of the event loop, one publish: the whole burst is a single event.
    expect(events.filter((e) => e.type === 'delta')).toHaveLength(1);
    expect(deltas.map((d) => d.k)).toEqual(['reasoning', 'text', 'tool', 'text']);
    expect(deltas[0]).toEqual({ k: 'reasoning', t: 'think more' });
    expect(deltas[1]).toEqual({ k: 'text', t: 'Hello' });
    expect(deltas[2]).toMatchObject({ k: 'tool', i: 0, id: 'call_1', args: '{"city":"Oslo"}' });
    expect(deltas[3]).toEqual({ k: 'text', t: '!' });
  });

  it('a quiet stream sends heartbeats; nothing is published after the end', async () => {
    const id = randomUUID();
    const p = publisher(id, 30);
    p.started('w-1');
    await until(() => eventsOf(id).filter((e) => e.type === 'heartbeat').length >= 2);
    await p.end({ type: 'error', error: 'backend_error', message: 'boom' });
    p.delta({ k: 'text', t: 'late' });
    await until(() => eventsOf(id).some((e) => e.type === 'error'));
    const count = eventsOf(id).length;
    await new Promise((r) => setTimeout(r, 100));
    expect(eventsOf(id).length).toBe(count);
    expect(eventsOf(id).at(-1)).toMatchObject({ type: 'error', error: 'backend_error' });
  });

  it('tells when a publish reached nobody: the api that owned the stream is gone', async () => {
    const p = new JobPublisher(redis, `${channel}:nobody`, randomUUID(), 1, log, 60_000);
    let gone = false;
    p.onGone = () => {
      gone = true;
    };
    p.started('w-1');
    await until(() => gone);
    expect(gone).toBe(true);
  });
});

/**
 * A Redis that refuses writes for a while (restarting, failing over): the events wait in order
 * and are written once it takes them again, or, past the backlog's bounds, the job loses them and
 * says so in its end. A fake connection: what matters is the order of the writes it accepted.
 */
describe('JobPublisher while Redis refuses its writes', () => {
  const log = createLogger({ service: 'worker', instance: 'pub-test', level: 'silent' });

  /** PUBLISH only (no log): refused while `down`, else recorded. */
  function flakyRedis() {
    const state = { down: false, refused: 0, written: [] as JobEvent[] };
    const redis = {
      publish: async (_ch: string, raw: string) => {
        if (state.down) {
          state.refused++;
          throw new Error("Stream isn't writeable and enableOfflineQueue options is false");
        }
        state.written.push(decodeEvent(raw)!);
        return 1;
      },
    } as unknown as Redis;
    return { state, redis };
  }
  const done = {
    type: 'done',
    finishReason: 'stop',
    usage: { promptTokens: 1, completionTokens: 9 },
  } as const;
  const text = (events: JobEvent[]) =>
    events.flatMap((e) => (e.type === 'delta' ? e.d.map((d) => (d.k === 'text' ? d.t : '')) : [])).join('');

  it('keeps what Redis refused and writes it, in order, with nothing skipped, once Redis is back', async () => {
    const { state, redis } = flakyRedis();
    const p = new JobPublisher(redis, 'ch', 'j', 1, log, 20, { graceMs: -1 });
    p.started('w-1');
    p.delta({ k: 'text', t: 'one ' });
    await until(() => state.written.some((e) => e.type === 'delta'));
    state.down = true;
    for (const t of ['two ', 'three ', 'four ']) {
      p.delta({ k: 'text', t });
      await new Promise((r) => setTimeout(r, 30));
    }
    await until(() => state.refused >= 3);
    const ending = p.end(done);
    await new Promise((r) => setTimeout(r, 200));
    state.down = false;
    await ending;
    expect(state.written.map((e) => e.seq)).toEqual(state.written.map((_, i) => i));
    expect(text(state.written)).toBe('one two three four ');
    expect(state.written.at(-1)).toMatchObject({ type: 'done' });
    // Heartbeats (every 20 ms) did not pile up behind the refused write.
    expect(state.written.filter((e) => e.type === 'heartbeat').length).toBeLessThan(3);
    expect(p.lost).toBeUndefined();
  });

  it('past the backlog (time): the events are dropped, the generation told to stop, and the end written is an error saying why', async () => {
    const { state, redis } = flakyRedis();
    const p = new JobPublisher(redis, 'ch', 'j', 1, log, 60_000, {
      graceMs: -1,
      backlog: { maxMs: 150, maxBytes: 1 << 20 },
    });
    let stopped = 0;
    p.onLost = () => stopped++;
    p.started('w-1');
    p.delta({ k: 'text', t: 'kept ' });
    await until(() => state.written.some((e) => e.type === 'delta'));
    state.down = true;
    p.delta({ k: 'text', t: 'dropped ' });
    await until(() => stopped === 1, 2000);
    expect(p.lost).toMatch(/could not be written to Redis/);
    p.delta({ k: 'text', t: 'after ' });
    state.down = false;
    await p.end(done);
    expect(stopped).toBe(1);
    expect(text(state.written)).toBe('kept ');
    const end = state.written.at(-1)!;
    // Its seq leaves the hole visible to every reader; the usage is still what was generated.
    expect(end).toMatchObject({ type: 'error', error: 'internal_error', usage: done.usage });
    expect(end.seq).toBeGreaterThan(state.written.at(-2)!.seq + 1);
  });

  it('past the backlog (bytes of text held): the same, before the time runs out', async () => {
    const { state, redis } = flakyRedis();
    const p = new JobPublisher(redis, 'ch', 'j', 1, log, 60_000, {
      graceMs: -1,
      backlog: { maxMs: 60_000, maxBytes: 64 },
    });
    let stopped = 0;
    p.onLost = () => stopped++;
    p.started('w-1');
    await until(() => state.written.length === 1);
    state.down = true;
    p.delta({ k: 'text', t: 'a' });
    await until(() => state.refused >= 1);
    for (let i = 0; i < 10; i++) p.delta({ k: 'text', t: 'ten bytes.' });
    expect(stopped).toBe(1);
    state.down = false;
    await p.end({ type: 'error', error: 'cancelled', message: 'stopped' });
    expect(text(state.written)).toBe('');
    expect(state.written.at(-1)).toMatchObject({ type: 'error', error: 'cancelled' });
  });
});
