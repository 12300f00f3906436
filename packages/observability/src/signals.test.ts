import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';

/** A process whose shutdown takes `closeMs`, wired by exitOnSignals; resolves with its exit code. */
async function run(closeMs: number, signals: { at: number; sig: NodeJS.Signals }[]): Promise<number | null> {
  const source = `
    import { exitOnSignals } from ${JSON.stringify(new URL('./signals.ts', import.meta.url).pathname)};
    const log = { info() {}, error() {} };
    exitOnSignals(log, () => new Promise((r) => setTimeout(r, ${closeMs})));
    console.log('armed');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', source], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await once(child.stdout!, 'data');
  const start = Date.now();
  for (const { at, sig } of signals) {
    await new Promise((r) => setTimeout(r, Math.max(0, start + at - Date.now())));
    child.kill(sig);
  }
  const [code] = (await once(child, 'exit')) as [number | null];
  return code;
}

describe('exitOnSignals', () => {
  it('one stop delivered twice (group Ctrl-C, then pnpm forwarding it) drains and exits 0', async () => {
    expect(
      await run(400, [
        { at: 0, sig: 'SIGINT' },
        { at: 50, sig: 'SIGINT' },
      ]),
    ).toBe(0);
  });

  it('a second signal more than a second later exits at once, with 1', async () => {
    expect(
      await run(5000, [
        { at: 0, sig: 'SIGTERM' },
        { at: 1300, sig: 'SIGTERM' },
      ]),
    ).toBe(1);
  });
});
