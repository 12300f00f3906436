/**
 * Self time by function (and by package) of V8 `.cpuprofile` files, as written by
 * `BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" pnpm bench --only latency`:
 *
 *   node --import tsx bench/src/profile-summary.ts /tmp/prof/CPU.….cpuprofile [--top 25]
 *        [--timeline] [--from 11 --to 20]
 *
 * `--timeline` prints the busy share of each second (to find the measured phase: the processes
 * start, then idle while the simulator is measured directly); `--from`/`--to` (seconds since the
 * profile started) restrict the summary to that window.
 * A sample's time is the delta to the next sample; a node's self time is the sum over the samples
 * taken in it. `(idle)` is the event loop waiting, `(garbage collector)` GC, `(program)` native
 * code outside JavaScript (libuv, syscalls, the parser).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  ms: number;
  share: number;
}

/** `node_modules/<pkg>` (pnpm's nested layout too), `node:…` for Node internals, else the file. */
export function packageOf(url: string): string {
  if (!url) return '(native)';
  if (url.startsWith('node:internal/deps/')) return url.split('/').slice(0, 3).join('/');
  if (url.startsWith('node:internal/')) return url.split('/').slice(0, 2).join('/');
  if (url.startsWith('node:')) return url;
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const m = url.match(/\/(apps|packages)\/([^/]+)\//);
  return m ? `${m[1]}/${m[2]}` : url.replace(/^file:\/\//, '');
}

function frameName(f: CallFrame): string {
  const fn = f.functionName || '(anonymous)';
  if (!f.url) return fn;
  const file = f.url
    .replace(/^file:\/\//, '')
    .replace(/^.*node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?/, '');
  return `${fn} ${file.replace(/^\/work\/main\//, '')}:${f.lineNumber + 1}`;
}

/** Busy (not idle) share of each second of the profile, 0..1. */
export function timeline(profile: CpuProfile): number[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const busy: number[] = [];
  let t = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    const second = Math.floor(t / 1e6);
    busy[second] ??= 0;
    if (byId.get(profile.samples[i]!)?.callFrame.functionName !== '(idle)')
      busy[second] += (profile.timeDeltas[i + 1] ?? 0) / 1e6;
  }
  return Array.from(busy, (b) => b ?? 0);
}

/**
 * Self time per function and per package, largest first, over the samples taken between
 * `fromS` and `toS` seconds after the profile started (default: all).
 */
export function summarise(
  profile: CpuProfile,
  fromS = 0,
  toS = Number.POSITIVE_INFINITY,
): {
  wallMs: number;
  byFunction: SelfTime[];
  byPackage: SelfTime[];
} {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const fn = new Map<string, number>();
  const pkg = new Map<string, number>();
  let total = 0;
  let t = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    if (t < fromS * 1e6 || t >= toS * 1e6) continue;
    const us = profile.timeDeltas[i + 1] ?? 0;
    const node = byId.get(profile.samples[i]!);
    if (!node) continue;
    total += us;
    const f = node.callFrame;
    const special = f.functionName.startsWith('(') && !f.url;
    fn.set(frameName(f), (fn.get(frameName(f)) ?? 0) + us);
    const p = special ? f.functionName : packageOf(f.url);
    pkg.set(p, (pkg.get(p) ?? 0) + us);
  }
  const rank = (m: Map<string, number>) =>
    [...m.entries()]
      .map(([name, us]) => ({ name, ms: us / 1000, share: total ? us / total : 0 }))
      .sort((a, b) => b.ms - a.ms);
  return { wallMs: total / 1000, byFunction: rank(fn), byPackage: rank(pkg) };
}

function main(argv: string[]): void {
  const opt = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : undefined;
  };
  const top = opt('--top') ?? 25;
  const files = argv.filter((a) => a.endsWith('.cpuprofile'));
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    if (argv.includes('--timeline')) {
      const busy = timeline(profile).map((b) => Math.round(b * 100));
      console.log(`\n### ${file}: busy % of one core, second by second\n${busy.join(' ')}`);
    }
    const from = opt('--from') ?? 0;
    const to = opt('--to') ?? Number.POSITIVE_INFINITY;
    const s = summarise(profile, from, to);
    const busy = s.byPackage.filter((p) => p.name !== '(idle)').reduce((a, p) => a + p.ms, 0);
    const window = Number.isFinite(to) || from > 0 ? ` (${from}–${to} s)` : '';
    console.log(
      `\n### ${file}${window}: ${(s.wallMs / 1000).toFixed(1)} s sampled, busy ${(busy / 1000).toFixed(1)} s`,
    );
    console.log('\n| package | self ms | share |\n|---|---|---|');
    for (const p of s.byPackage.slice(0, 15))
      console.log(`| ${p.name} | ${p.ms.toFixed(0)} | ${(p.share * 100).toFixed(1)}% |`);
    console.log('\n| function | self ms | share |\n|---|---|---|');
    for (const f of s.byFunction.slice(0, top))
      console.log(
        `| ${f.name.replaceAll('|', '\\|')} | ${f.ms.toFixed(0)} | ${(f.share * 100).toFixed(1)}% |`,
      );
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
