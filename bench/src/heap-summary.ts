/**
 * What one open stream costs in the api's JS heap: the difference between two V8 heap snapshots
 * (before the streams, and with N open), by constructor, divided by N.
 *
 *   BENCH_NODE_ARGS="--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=/tmp/heap" pnpm bench --only idle
 *   node --import tsx bench/src/heap-summary.ts BEFORE.heapsnapshot AT_OPEN.heapsnapshot 5000 [--top 30]
 *
 * Self sizes only (what each object itself occupies); strings, code and V8's internal arrays are
 * grouped by kind.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface HeapSnapshotJson {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export interface HeapGroup {
  count: number;
  bytes: number;
}

/** Total self size and count per group (object constructor, closure, or kind for V8 internals). */
export function groupHeap(snap: HeapSnapshotJson): { total: number; groups: Map<string, HeapGroup> } {
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const groups = new Map<string, HeapGroup>();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]!] ?? '?';
    const name = snap.strings[snap.nodes[i + iName]!] ?? '';
    const key =
      type === 'object' || type === 'native'
        ? `${name}`.slice(0, 60)
        : type === 'closure'
          ? 'closure'
          : type === 'array' || type === 'hidden'
            ? `(${type}) ${name}`.slice(0, 60)
            : `(${type})`;
    const size = snap.nodes[i + iSize]!;
    total += size;
    const g = groups.get(key) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += size;
    groups.set(key, g);
  }
  return { total, groups };
}

function main(argv: string[]): void {
  const [beforeFile, afterFile, perArg] = argv.filter((a) => !a.startsWith('--'));
  const topIdx = argv.indexOf('--top');
  const top = topIdx >= 0 ? Number(argv[topIdx + 1]) : 30;
  if (!beforeFile || !afterFile || !perArg) {
    console.error('usage: heap-summary.ts BEFORE.heapsnapshot AT_OPEN.heapsnapshot STREAMS [--top 30]');
    process.exit(2);
  }
  const per = Number(perArg);
  const load = (f: string) => groupHeap(JSON.parse(readFileSync(f, 'utf8')) as HeapSnapshotJson);
  const a = load(beforeFile);
  const b = load(afterFile);
  console.log(
    `JS heap (self sizes): ${(a.total / 2 ** 20).toFixed(1)} MiB → ${(b.total / 2 ** 20).toFixed(1)} MiB, ` +
      `${((b.total - a.total) / per / 1024).toFixed(1)} KiB per stream\n`,
  );
  console.log('| per stream | objects | bytes |\n|---|---|---|');
  const rows = [...b.groups].map(([k, g]) => {
    const before = a.groups.get(k) ?? { count: 0, bytes: 0 };
    return { k, count: (g.count - before.count) / per, bytes: (g.bytes - before.bytes) / per };
  });
  for (const r of rows.sort((x, y) => y.bytes - x.bytes).slice(0, top))
    console.log(`| ${r.k.replaceAll('|', '\\|')} | ${r.count.toFixed(1)} | ${r.bytes.toFixed(0)} |`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
