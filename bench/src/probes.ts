import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { type Agent, request } from 'node:http';
import { connect } from 'node:net';
import { until } from '@llmgw/devkit';

/** Resident set size of a process, MiB, from /proc/<pid>/status (Linux). NaN when unreadable. */
export function rssMiB(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** The soft limit on open files of this process (children inherit it); Infinity if unlimited. */
export function openFilesLimit(): number {
  try {
    const m = readFileSync('/proc/self/limits', 'utf8').match(/^Max open files\s+(\S+)/m);
    return m?.[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m?.[1] ?? Number.NaN);
  } catch {
    return Number.NaN;
  }
}

/** A small JSON GET (the simulator's /sim/stats, the api's /metrics), on the given agent. */
export function getText(url: string, agent?: Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () =>
        (res.statusCode ?? 0) < 300 ? resolve(body) : reject(new Error(`${url}: ${res.statusCode} ${body}`)),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** What the simulator's `GET /sim/stats` answers (apps/sim/src/stats.ts). */
export interface SimStatsView {
  running: number;
  waiting: number;
  peak_running: number;
  requests: number;
  completed: number;
  aborted: number;
}

export async function simStats(simUrl: string, agent?: Agent): Promise<SimStatsView> {
  return JSON.parse(await getText(`${simUrl}/sim/stats`, agent)) as SimStatsView;
}

export async function resetSimStats(simUrl: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const req = request(`${simUrl}/sim/stats/reset`, { method: 'POST' }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
    req.end();
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const CLK_TCK = (() => {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(out.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/**
 * CPU seconds (user + system) a process used so far, from /proc/<pid>/stat, or a group of them
 * added up (a server and its worker processes); NaN when one is unreadable.
 */
export function cpuSeconds(pid: number | number[] | undefined): number {
  if (Array.isArray(pid)) return pid.length ? pid.reduce((a, p) => a + cpuSeconds(p), 0) : Number.NaN;
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) ": state is field 0, utime 11, stime 12 (proc(5), fields 3, 14 and 15).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/** used_cpu_user + used_cpu_sys of a Redis server (INFO cpu, over a raw RESP connection). */
export function redisCpuSeconds(url: string): Promise<number> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port || 6379), hostname || '127.0.0.1');
    let buf = '';
    const done = (v: number) => {
      socket.destroy();
      resolve(v);
    };
    socket.setTimeout(1000, () => done(Number.NaN));
    socket.on('error', () => done(Number.NaN));
    socket.on('data', (c) => {
      buf += c.toString('utf8');
      const user = buf.match(/used_cpu_user:([\d.]+)/);
      const sys = buf.match(/used_cpu_sys:([\d.]+)/);
      if (user && sys && buf.endsWith('\r\n')) done(Number(user[1]) + Number(sys[1]));
    });
    socket.write('*2\r\n$4\r\nINFO\r\n$3\r\ncpu\r\n');
  });
}

export interface CpuUse {
  process: string;
  cpuS: number;
  /** Share of one core over the wall time, 0..n. */
  cores: number;
}

/**
 * CPU used by each of a set of processes over one phase: the children by pid (a group of pids is
 * one process of the table), this process (the load generator), and Redis (a shared Redis also
 * counts what others ran on it meanwhile).
 */
export async function measureCpu<T>(
  pids: Record<string, number | number[] | undefined>,
  redisUrl: string | undefined,
  phase: () => Promise<T>,
): Promise<{ result: T; use: CpuUse[]; wallS: number }> {
  const names = Object.keys(pids);
  const before = names.map((n) => cpuSeconds(pids[n]));
  const selfBefore = process.cpuUsage();
  const redisBefore = redisUrl ? await redisCpuSeconds(redisUrl) : Number.NaN;
  const started = performance.now();
  const result = await phase();
  const wallS = (performance.now() - started) / 1000;
  const redisAfter = redisUrl ? await redisCpuSeconds(redisUrl) : Number.NaN;
  const self = process.cpuUsage(selfBefore);
  const use: CpuUse[] = names.map((n, i) => ({
    process: n,
    cpuS: cpuSeconds(pids[n]) - before[i]!,
    cores: 0,
  }));
  use.push({ process: 'load generator (bench)', cpuS: (self.user + self.system) / 1e6, cores: 0 });
  if (redisUrl) use.push({ process: 'redis-server', cpuS: redisAfter - redisBefore, cores: 0 });
  for (const u of use) u.cores = u.cpuS / wallS;
  return { result, use, wallS };
}

/**
 * With `BENCH_NODE_ARGS="--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=DIR"`, writes a heap
 * snapshot of process `pid` into DIR and resolves with its path once written; otherwise does
 * nothing (undefined). For `bench/src/heap-summary.ts`.
 */
export async function heapSnapshot(pid: number | undefined): Promise<string | undefined> {
  const args = process.env.BENCH_NODE_ARGS ?? '';
  const dir = args.match(/--diagnostic-dir=(\S+)/)?.[1];
  if (pid === undefined || !dir || !args.includes('--heapsnapshot-signal=SIGUSR2')) return undefined;
  const snapshots = () =>
    readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot') && f.includes(`.${pid}.`));
  const before = new Set(snapshots());
  process.kill(pid, 'SIGUSR2');
  let file: string | undefined;
  await until(
    () => {
      file = snapshots().find((f) => !before.has(f));
      return file !== undefined;
    },
    120_000,
    200,
  );
  if (!file) return undefined;
  // Written in one go by the paused process; wait until its size stops changing.
  let size = -1;
  await until(
    () => {
      const now = statSync(`${dir}/${file}`).size;
      const stable = now === size && now > 0;
      size = now;
      return stable;
    },
    120_000,
    500,
  );
  return `${dir}/${file}`;
}
