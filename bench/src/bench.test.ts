import { spawn } from 'node:child_process';
import { REPO_ROOT } from '@llmgw/devkit';
import { describe, expect, inject, it, onTestFinished } from 'vitest';

/** The header row of each scenario's table, in the order `pnpm bench` prints them. */
const TABLES = {
  latency: '| path | ok | failed | TTFT p50 ms | TTFT p99 ms | gap p50 ms | gap p99 ms | tokens/stream |',
  throughput: '| path | ok | failed | wall s | streams/s | tokens/s |',
  idle: '| path | process | open | of which streaming | failed |',
  cancel: '| path | ok | failed | p50 ms | p99 ms | p99 upper bound ms | resolution p50 ms |',
  ratelimit:
    '| operation | concurrent callers | ok | failed | per second | latency p50 ms | latency p99 ms |',
  redis: '| topology | ok | failed | jobs/s | Redis CPU µs/job (masters) |',
  tracing:
    '| tracing | ok | failed | streams/s | TTFT p50 ms | TTFT p99 ms | api+worker CPU µs/stream | spans/stream |',
};

describe('pnpm bench --quick', () => {
  // Proves the harness works end to end (real processes, every scenario); never asserts speed.
  it('runs every scenario and prints its table, exit code 0', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--conditions=@llmgw/source', 'bench/src/run.ts', '--quick'],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, REDIS_URL: inject('redisUrl'), BENCH_NODE_ARGS: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    // A timeout leaves the run going: SIGTERM makes it stop its simulator, worker and api first.
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code, out).toBe(0);
    let at = -1;
    for (const [name, header] of Object.entries(TABLES)) {
      const section = out.indexOf(`## ${name}`);
      expect(section, `no ${name} section in:\n${out}`).toBeGreaterThan(at);
      expect(out.indexOf(header, section), `no ${name} table in:\n${out}`).toBeGreaterThan(section);
      at = section;
    }
    expect(out).toMatch(/\| gateway \(\/chat\) \| api \| 100 \| 100 \| 0 \|/);
    // LiteLLM's rows: measured where .venv-litellm exists, else why not (--quick never installs it).
    for (const name of ['latency', 'throughput']) {
      const section = out.slice(out.indexOf(`## ${name}`));
      expect(section, out).toMatch(/\| LiteLLM [\d.]+ (\(\d+ workers?\) \| \d+ \| 0 \||\| skipped: )/);
    }
    // The Redis scenario: both topologies served every stream, and on the Cluster each model's
    // queue is on a master of its own.
    const redis = out.slice(out.indexOf('## redis'));
    expect(redis, out).toMatch(/\| one primary \| 30 \| 0 \|/);
    expect(redis, out).toMatch(/\| Sentinel, primary \+ replica \| 30 \| 0 \|/);
    expect(redis, out).toMatch(/\| Cluster, 3 masters \+ 3 replicas \| 30 \| 0 \|/);
    expect(redis.match(/\| Cluster[^|]*\| \d+ \| master \| queue sim-/g), out).toHaveLength(3);
    // Tracing off exports nothing; on, each stream's spans reach the OTLP receiver.
    const tracing = out.slice(out.indexOf('## tracing'));
    expect(tracing, out).toMatch(/\| off \| 30 \| 0 \| [\d.]+ \| [\d.]+ \| [\d.]+ \| \d+ \| 0\.0 \|/);
    expect(tracing, out).toMatch(/\| on \| 30 \| 0 \| [\d.]+ \| [\d.]+ \| [\d.]+ \| \d+ \| [1-9][\d.]* \|/);
    // The batch lane ran beside the interactive load, which every stream of came through.
    const batch = out.slice(out.indexOf('## batch'));
    expect(batch, out).toMatch(/\| interactive alone \| 30 \| 0 \| [\d.]+ \| [\d.]+ \| [\d.]+ \| 0 \|/);
    expect(batch, out).toMatch(
      /\| interactive \+ batch \| 30 \| 0 \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [1-9]\d* \|/,
    );
    // Then the one table of the targets the run measured: those of latency, throughput and idle.
    const targets = out.indexOf('## targets (issue 17)');
    expect(targets, `no targets section after the last scenario in:\n${out}`).toBeGreaterThan(at);
    expect(out.indexOf('| measure | measured | target | met |', targets)).toBeGreaterThan(targets);
    expect(out.slice(targets)).toMatch(/\| api RSS with 100 idle streams \(\/chat\) \| [\d.]+ MB \|/);
  }, 150_000);
});
