import { DEFAULT_MODEL } from '@llmgw/config';
import { afterEach, describe, expect, it } from 'vitest';
import { Scheduler } from './scheduler.ts';
import { type Simulator, startSimulator } from './server.ts';
import { chunksOf, post, readSse, waitFor } from './test-helpers.ts';

describe('Scheduler', () => {
  it('runs up to maxNumSeqs, queues FIFO, and starts the next waiter on release', () => {
    const s = new Scheduler(1);
    const started: string[] = [];
    const a = s.acquire(() => started.push('a'));
    const b = s.acquire(() => started.push('b'));
    const c = s.acquire(() => started.push('c'));
    expect(started).toEqual(['a']);
    expect([s.running, s.waiting]).toEqual([1, 2]);
    b.release();
    expect(s.waiting).toBe(1);
    a.release();
    a.release();
    expect(started).toEqual(['a', 'c']);
    expect([s.running, s.waiting, s.peakRunning]).toEqual([1, 0, 1]);
    c.release();
    expect(s.running).toBe(0);
  });
});

describe('max-num-seqs on the wire', () => {
  let sim: Simulator | undefined;
  afterEach(async () => {
    await sim?.close();
    sim = undefined;
  });

  it('makes a request beyond the limit wait: its TTFT includes a whole earlier request', async () => {
    const ttftMs = 40;
    const itlMs = 15;
    const maxTokens = 10;
    sim = await startSimulator({ port: 0, ttftMs, itlMs, maxNumSeqs: 2 });
    const url = `${sim.url}/v1/chat/completions`;
    const body = (i: number) => ({
      model: DEFAULT_MODEL,
      messages: [{ role: 'user', content: `request ${i}` }],
      max_tokens: maxTokens,
      stream: true,
    });
    const run = async (i: number) => {
      const sent = performance.now();
      const read = await readSse(await post(url, body(i)));
      const firstToken = read.events[1]!.at - sent;
      return { firstToken, tokens: chunksOf(read).length - 2 };
    };
    const results = await Promise.all([run(0), run(1), run(2)]);
    for (const r of results) expect(r.tokens).toBe(maxTokens);
    const [a, b, c] = results.map((r) => r.firstToken).sort((x, y) => x - y) as [number, number, number];
    // Lower bounds only (a slow machine only makes them larger): the third request could start only
    // after one of the first two had produced all its tokens, then paid its own TTFT.
    expect(a).toBeGreaterThanOrEqual(ttftMs * 0.9);
    expect(b).toBeGreaterThanOrEqual(ttftMs * 0.9);
    expect(c).toBeGreaterThanOrEqual((2 * ttftMs + (maxTokens - 1) * itlMs) * 0.9);
    expect(sim.stats()).toMatchObject({ peakRunning: 2, running: 0, waiting: 0, completed: 3 });
  });

  it('reports waiting requests in stats while the slots are busy', async () => {
    sim = await startSimulator({ port: 0, ttftMs: 5, itlMs: 5, maxNumSeqs: 1 });
    const url = `${sim.url}/v1/chat/completions`;
    const s = sim;
    const body = { model: DEFAULT_MODEL, messages: [{ role: 'user', content: 'x' }], max_tokens: 20 };
    const all = Promise.all([post(url, body), post(url, body), post(url, body)]);
    await waitFor('two waiting', () => s.stats().waiting === 2);
    expect(s.stats().running).toBe(1);
    for (const res of await all) expect(res.status).toBe(200);
    expect(s.stats()).toMatchObject({ running: 0, waiting: 0, peakRunning: 1, completed: 3 });
  });
});
