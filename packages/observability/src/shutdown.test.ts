import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.ts';
import { runShutdown } from './shutdown.ts';

describe('runShutdown', () => {
  it('runs every step in order, awaited; a step that throws is logged by name and the rest still run', async () => {
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        done();
      },
    });
    const log = createLogger({ service: 'worker', instance: 't', level: 'debug', destination });
    const ran: string[] = [];
    const failed = await runShutdown(log, [
      {
        name: 'a',
        run: async () => {
          await new Promise((r) => setTimeout(r, 20));
          ran.push('a');
        },
      },
      {
        name: 'b',
        run: () => {
          throw new Error('connection already closed');
        },
      },
      { name: 'c', run: async () => Promise.reject(new Error('late')) },
      { name: 'd', run: () => ran.push('d') },
    ]);
    expect(ran).toEqual(['a', 'd']);
    expect(failed).toEqual(['b', 'c']);
    expect(lines.filter((l) => l.msg === 'shutdown_step_failed')).toEqual([
      expect.objectContaining({ step: 'b', err: 'connection already closed', level: 'warn' }),
      expect.objectContaining({ step: 'c', err: 'late' }),
    ]);
  });
});
