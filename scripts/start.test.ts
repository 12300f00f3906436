import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { freePort, postSSE, REPO_ROOT } from '@llmgw/devkit';
import { describe, expect, it } from 'vitest';

describe('pnpm start', () => {
  it('brings up redis, simulator, worker and api, prints a working curl example, and stops on SIGINT', async () => {
    const [port, simPort, deadRedis] = await Promise.all([freePort(), freePort(), freePort()]);
    // No Redis at REDIS_URL: the script must start its own redis-server.
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        PORT: String(port),
        SIM_PORT: String(simPort),
        REDIS_URL: `redis://127.0.0.1:${deadRedis}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: string[] = [];
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const ready = new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (l) => {
        out.push(l);
        if (l.includes('curl -N')) resolve();
      });
      createInterface({ input: child.stderr! }).on('line', (l) => out.push(l));
      exited.then((code) => reject(new Error(`pnpm start exited (${code}):\n${out.join('\n')}`)));
    });
    try {
      await ready;
      expect(out.join('\n')).toMatch(/started redis-server at redis:\/\/127\.0\.0\.1:\d+/);
      expect(out.some((l) => l.startsWith('[api   ]') && l.includes('api_listening'))).toBe(true);
      // The ready line's example carries the development key the script created.
      const key = out.join('\n').match(/Authorization: Bearer (llmgw_\S+)'/)?.[1];
      expect(key).toBeTruthy();
      const body = { messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 4 };
      const denied = await postSSE(`http://127.0.0.1:${port}/chat`, body);
      expect(denied.status).toBe(401);
      const res = await postSSE(`http://127.0.0.1:${port}/chat`, body, {
        headers: { authorization: `Bearer ${key}` },
      });
      expect(res.status).toBe(200);
      expect(res.data[res.data.length - 1]).toBe('[DONE]');
      expect(res.data).toHaveLength(5);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  }, 60_000);
});
