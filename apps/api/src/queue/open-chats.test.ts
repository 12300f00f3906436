import { describe, expect, it } from 'vitest';
import { JobSubscription } from '../reply/subscription.ts';
import { OpenChats } from './open-chats.ts';
import type { SubmittedChat } from './submitted-chat.ts';

const chatOf = (jobId: string): SubmittedChat => ({
  jobId,
  model: 'm',
  sub: new JobSubscription(jobId, () => {}),
  enqueuedAt: Date.now(),
  enqueuedAtPerf: performance.now(),
  rendition: { f: 'seed', model: 'm', created: 0, rid: 'r' },
});

describe('OpenChats', () => {
  it('drained() resolves at once when nothing is open, else once the last subscription closes', async () => {
    const open = new OpenChats({ cancel: () => {} });
    await open.drained();
    const [a, b] = [chatOf('a'), chatOf('b')];
    open.add(a);
    open.add(b);
    let drained = false;
    void open.drained().then(() => (drained = true));
    a.sub.close();
    await a.sub.whenClosed;
    await Promise.resolve();
    expect([open.count, drained]).toEqual([1, false]);
    b.sub.close();
    await open.drained();
    expect(open.count).toBe(0);
  });

  it('drainedWithin(ms) gives up after ms while a request stays open', async () => {
    const open = new OpenChats({ cancel: () => {} });
    open.add(chatOf('stuck'));
    const t0 = performance.now();
    await open.drainedWithin(30);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
    expect(open.count).toBe(1);
  });

  it('failAll ends every open stream with shutting_down and cancels its job', async () => {
    const cancelled: [string, string][] = [];
    const open = new OpenChats({ cancel: (chat, reason) => cancelled.push([chat.jobId, reason]) });
    const chat = chatOf('j');
    open.add(chat);
    open.failAll('restarting');
    const events = [];
    for await (const batch of chat.sub) events.push(...batch);
    expect(events).toMatchObject([{ type: 'error', error: 'shutting_down', message: 'restarting' }]);
    expect(cancelled).toEqual([['j', 'api_shutdown']]);
    await open.drained();
  });
});
