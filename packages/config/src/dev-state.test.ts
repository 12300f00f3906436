import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addDevStack, type DevStack, liveDevStacks, removeDevStack } from './dev-state.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function stateFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'llmgw-dev-state-'));
  dirs.push(dir);
  return join(dir, 'state.json');
}

/** The pid of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  return Number(child.stdout.trim());
}

const stack = (pid: number, prefix = 'llmgw-dev'): DevStack => ({
  pid,
  started_at: 1764061200000,
  api: 'http://127.0.0.1:8000',
  redis: 'redis://127.0.0.1:40123',
  redis_env: { REDIS_URL: 'redis://:pw@127.0.0.1:40123' },
  key_prefix: prefix,
  key_file: '/tmp/dev-key',
});

describe('the dev-state file', () => {
  it('no file, or one that is not ours: no stacks', () => {
    const file = stateFile();
    expect(liveDevStacks(file)).toEqual([]);
    writeFileSync(file, '{"stacks":[{"pid":"not a number"}]}');
    expect(liveDevStacks(file)).toEqual([]);
    writeFileSync(file, '{"stacks": [');
    expect(liveDevStacks(file)).toEqual([]);
  });

  it('a stack added is listed while its process runs; the file is 0600 (it may hold a Redis password)', () => {
    const file = stateFile();
    addDevStack(file, stack(process.pid));
    expect(liveDevStacks(file)).toEqual([stack(process.pid)]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // Added again (same pid): replaced, not doubled.
    addDevStack(file, stack(process.pid, 'llmgw-dev2'));
    expect(liveDevStacks(file)).toEqual([stack(process.pid, 'llmgw-dev2')]);
  });

  it('the entry of a process that is gone (kill -9) is not listed, and the next write drops it', () => {
    const file = stateFile();
    const dead = deadPid();
    writeFileSync(file, JSON.stringify({ stacks: [stack(dead)] }));
    expect(liveDevStacks(file)).toEqual([]);
    addDevStack(file, stack(process.pid));
    expect(JSON.parse(readFileSync(file, 'utf8')).stacks.map((s: DevStack) => s.pid)).toEqual([process.pid]);
  });

  it('removing the last stack removes the file; removing another pid leaves it as it is', () => {
    const file = stateFile();
    addDevStack(file, stack(process.pid));
    const before = readFileSync(file, 'utf8');
    removeDevStack(file, deadPid());
    expect(readFileSync(file, 'utf8')).toBe(before);
    removeDevStack(file, process.pid);
    expect(existsSync(file)).toBe(false);
    // Nothing to remove: no error, no file.
    removeDevStack(file, process.pid);
    expect(existsSync(file)).toBe(false);
  });
});
