/**
 * Helpers for the deployment tests: run a command as a child process and wait for its JSON log
 * lines, read a Dockerfile, copy a Docker build context the way `.dockerignore` filters it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from '@llmgw/devkit';

export { REPO_ROOT };

export interface RunningProcess {
  name: string;
  child: ChildProcess;
  /** Every stdout/stderr line, JSON-parsed when it is JSON (else `{ msg: line }`). */
  lines: Record<string, unknown>[];
  waitFor(pred: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<void>;
  exited: Promise<number | string>;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/**
 * Starts `command args` (no shell) and collects its output lines. The environment is this
 * process's plus `env`, or only `env` with `inheritEnv: false` (a container's, say).
 */
export function startProcess(
  name: string,
  command: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string | undefined>; inheritEnv?: boolean } = {},
): RunningProcess {
  const child = spawn(command, args, {
    cwd: opts.cwd ?? REPO_ROOT,
    env: { ...(opts.inheritEnv === false ? {} : process.env), ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  const listeners = new Set<() => void>();
  const onLine = (raw: string) => {
    let line: Record<string, unknown> = { msg: raw };
    try {
      const parsed: unknown = JSON.parse(raw);
      if (typeof parsed === 'object' && parsed !== null) line = parsed as Record<string, unknown>;
    } catch {}
    lines.push(line);
    for (const l of listeners) l();
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1));
  });
  let exitCode: number | string | undefined;
  void exited.then((c) => {
    exitCode = c;
    for (const l of listeners) l();
  });

  return {
    name,
    child,
    lines,
    exited,
    waitFor(pred, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (lines.some(pred)) return done();
          if (exitCode !== undefined) return done(new Error(`${name} exited (${exitCode}): ${tail(lines)}`));
        };
        const timer = setTimeout(
          () => done(new Error(`${name}: no matching line within ${timeoutMs} ms: ${tail(lines)}`)),
          timeoutMs,
        );
        const done = (err?: Error) => {
          clearTimeout(timer);
          listeners.delete(check);
          if (err) reject(err);
          else resolve();
        };
        listeners.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

const tail = (lines: Record<string, unknown>[]) =>
  lines
    .slice(-5)
    .map((l) => JSON.stringify(l))
    .join('\n');

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface DockerInstruction {
  keyword: string;
  /** The arguments, continuation lines joined. */
  args: string;
  /** Exec form (`["node", "x"]`) parsed, when the arguments are a JSON array. */
  exec?: string[];
}

export interface DockerStage {
  from: string;
  name?: string;
  instructions: DockerInstruction[];
}

/** The build stages of a Dockerfile (comments dropped, `\` continuations joined). */
export function readDockerfile(path: string): { args: DockerInstruction[]; stages: DockerStage[] } {
  const logical: string[] = [];
  let current = '';
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const line = raw.trim();
    if (current === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1).trim()} `;
      continue;
    }
    logical.push(current + line);
    current = '';
  }
  const args: DockerInstruction[] = [];
  const stages: DockerStage[] = [];
  for (const l of logical) {
    const m = /^(\S+)\s+(.*)$/.exec(l);
    if (!m) continue;
    const keyword = m[1]!.toUpperCase();
    const rest = m[2]!.trim();
    if (keyword === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      stages.push({ from: from?.[1] ?? rest, name: from?.[2], instructions: [] });
      continue;
    }
    const ins: DockerInstruction = { keyword, args: rest };
    const json = /^(?:(--\S+\s+)*)?(CMD\s+)?(\[.*\])$/.exec(rest);
    if (json) {
      try {
        const parsed: unknown = JSON.parse(json[3]!);
        if (Array.isArray(parsed) && parsed.every((p) => typeof p === 'string')) ins.exec = parsed;
      } catch {}
    }
    if (stages.length === 0) args.push(ins);
    else stages[stages.length - 1]!.instructions.push(ins);
  }
  return { args, stages };
}

/**
 * `.dockerignore` as Docker reads it, for the patterns this repository uses: `*` within one path
 * segment, `**` across segments, `!` re-includes, the last matching line wins, and an ignored
 * folder hides everything under it.
 */
export function dockerignoreMatcher(text: string): (relPath: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      return { negate, re: globToRegExp((negate ? l.slice(1) : l).replace(/^\/+|\/+$/g, '')) };
    });
  return (relPath) => {
    let ignored = false;
    for (const r of rules) if (r.re.test(relPath)) ignored = !r.negate;
    return ignored;
  };
}

function globToRegExp(pattern: string): RegExp {
  const segments = pattern.split('/');
  const re = segments
    .map((seg, i) => {
      const last = i === segments.length - 1;
      if (seg === '**') return last ? '.*' : '(?:[^/]+/)*';
      const part = seg
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]');
      return last ? part : `${part}/`;
    })
    .join('');
  return new RegExp(`^${re}$`);
}

/** Copies the Docker build context of `root` (what `.dockerignore` lets through) to `dest`. */
export function copyBuildContext(root: string, dest: string): void {
  const ignored = dockerignoreMatcher(readFileSync(join(root, '.dockerignore'), 'utf8'));
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const abs = join(dir, e.name);
      const rel = relative(root, abs);
      if (ignored(rel)) continue;
      if (e.isDirectory()) walk(abs);
      else if (e.isFile()) cpSync(abs, join(dest, rel));
    }
  };
  walk(root);
}
