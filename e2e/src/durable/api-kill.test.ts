import { DEFAULT_MODEL } from '@llmgw/config';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { type SpawnedStack, startSpawnedStack } from '../stack/spawned.ts';
import { chatText, readFrames } from './sse-frames.ts';

/** Real processes: two api replicas and two workers; the replica holding a stream is SIGKILLed. */
describe('durable generations across real processes', () => {
  let stack: SpawnedStack | undefined;
  afterAll(() => stack?.close('SIGKILL'));

  it('SIGKILL the api replica that holds a stream: the client reconnects to the other replica and completes', async () => {
    stack = await startSpawnedStack({
      redisUrl: inject('redisUrl'),
      sim: { SIM_TTFT_MS: '5', SIM_ITL_MS: '15', SIM_OUTPUT_TOKENS: '400' },
      workers: 2,
      apis: 2,
      env: { RESUME_GRACE_MS: '5000' },
    });
    const { headers } = await stack.createKey('enterprise');
    const [victim, survivor] = stack.apiUrls as [string, string];
    const body = {
      model: DEFAULT_MODEL,
      messages: [{ role: 'user', content: 'Survive a crash' }],
      max_tokens: 60,
      seed: 5,
      stream: true,
    };
    const post = (url: string, stopAfter?: number) =>
      readFrames(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        ...(stopAfter !== undefined && { stopAfter, keepOpen: true }),
      });
    const whole = await post(survivor);

    // The client reads 8 frames, then its api replica dies without a goodbye: the client did not
    // choose this loss, and asked for nothing (no Prefer: resumable), yet its job waits for it.
    const cut = await post(victim, 8);
    stack.apis[0]!.child.kill('SIGKILL');
    await stack.apis[0]!.exited;
    cut.close();

    const resumed = await readFrames(`${survivor}/v1/jobs/${cut.headers.get('x-job-id')}/events`, {
      headers: { ...headers, 'last-event-id': String(cut.frames.at(-1)!.id) },
    });
    expect(resumed.status).toBe(200);
    expect(resumed.frames.at(-1)!.data).toBe('[DONE]');
    expect(chatText([...cut.frames, ...resumed.frames])).toBe(chatText(whole.frames));
    // Frames batch differently from job to job; within one job the ids run on without a gap.
    const joined = [...cut.frames, ...resumed.frames];
    expect(joined.map((f) => f.id)).toEqual(joined.map((_, i) => i));
  });

  it('a rolling restart: the api stops past SHUTDOWN_GRACE_MS, the stream ends with shutting_down, and resumes on the other replica', async () => {
    await stack?.close('SIGKILL');
    stack = await startSpawnedStack({
      redisUrl: inject('redisUrl'),
      sim: { SIM_TTFT_MS: '5', SIM_ITL_MS: '15', SIM_OUTPUT_TOKENS: '400' },
      workers: 1,
      apis: 2,
      env: { SHUTDOWN_GRACE_MS: '200' },
    });
    const { headers } = await stack.createKey('enterprise');
    const [stopping, survivor] = stack.apiUrls as [string, string];
    const body = {
      model: DEFAULT_MODEL,
      messages: [{ role: 'user', content: 'Survive a deploy' }],
      // 400 tokens at 15 ms: 6 s, so a slow machine cannot finish it inside the 200 ms grace.
      max_tokens: 400,
      seed: 7,
      stream: true,
    };
    const init = { method: 'POST', headers: { ...headers, 'content-type': 'application/json' } };
    const whole = readFrames(`${survivor}/v1/chat/completions`, {
      ...init,
      body: JSON.stringify(body),
    });
    // No Prefer: resumable: the client did not choose this loss, so its job waits for it.
    // The api is stopped once the stream is under way (its first token frame), not after a guess.
    let streaming: () => void = () => {};
    const started = new Promise<void>((r) => {
      streaming = r;
    });
    const cut = readFrames(`${stopping}/v1/chat/completions`, {
      ...init,
      body: JSON.stringify(body),
      onFrame: (f) => f.id !== undefined && f.id > 0 && streaming(),
    });
    await started;
    stack.apis[0]!.child.kill('SIGTERM');
    const ended = await cut;
    const last = JSON.parse(
      ended.text
        .trim()
        .split('\n')
        .at(-1)!
        .replace(/^data: /, ''),
    ) as {
      error?: { code?: string };
    };
    expect(last.error?.code).toBe('shutting_down');
    expect(await stack.apis[0]!.exited).toBe(0);
    const resumed = await readFrames(`${survivor}/v1/jobs/${ended.headers.get('x-job-id')}/events`, {
      headers: {
        ...headers,
        'last-event-id': String(ended.frames.filter((f) => f.id !== undefined).at(-1)!.id),
      },
    });
    expect(resumed.frames.at(-1)!.data).toBe('[DONE]');
    const numbered = [...ended.frames.filter((f) => f.id !== undefined), ...resumed.frames];
    expect(chatText(numbered)).toBe(chatText((await whole).frames));
  });
});
