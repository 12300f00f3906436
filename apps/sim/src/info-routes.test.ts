import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from './server.ts';

describe('info routes', () => {
  let sim: Simulator;

  beforeAll(async () => {
    sim = await startSimulator({ port: 0, models: ['m1', 'm2'], maxModelLen: 4096 });
  });
  afterAll(() => sim.close());

  it('lists every served model name like vLLM', async () => {
    const res = await fetch(`${sim.url}/v1/models`);
    expect(res.status).toBe(200);
    const json = (await res.json()) as { object: string; data: Record<string, unknown>[] };
    expect(json.object).toBe('list');
    expect(json.data).toHaveLength(2);
    expect(json.data[1]).toMatchObject({
      id: 'm2',
      object: 'model',
      owned_by: 'vllm',
      root: 'm1',
      parent: null,
      max_model_len: 4096,
    });
    expect(typeof json.data[0]!.created).toBe('number');
  });

  it('answers /health with 200 and an empty body, and /version', async () => {
    const health = await fetch(`${sim.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe('');
    const version = await fetch(`${sim.url}/version`);
    expect(await version.json()).toHaveProperty('version');
  });

  it('answers unknown paths and methods like FastAPI', async () => {
    const missing = await fetch(`${sim.url}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ detail: 'Not Found' });
    const wrong = await fetch(`${sim.url}/v1/chat/completions`);
    expect(wrong.status).toBe(405);
  });
});
