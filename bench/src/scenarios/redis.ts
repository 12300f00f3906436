/**
 * What the gateway costs its Redis (issue 22, "Sizing, measured"): the same load of short streams
 * over three models on one primary, on a primary with a replica under Sentinel, and on a 3-master
 * Cluster (each master with a replica), each spawned for the run so that nothing else's commands
 * are counted (the sentinels' own CPU is not). Per job and per
 * token: process CPU (INFO cpu), command time (INFO commandstats), commands, and the memory a
 * completed job keeps while its results are retained; on the Cluster, how that load divides over
 * the masters. The numbers docs/operations.md "Sizing Redis" is written from.
 */
import { DEFAULT_MODEL } from '@llmgw/config';
import {
  askPort,
  type RedisClusterHandle,
  type RedisServerHandle,
  type SentinelGroup,
  spawnRedisCluster,
  spawnRedisServer,
  spawnSentinelGroup,
} from '@llmgw/devkit';
import { createKeys } from '@llmgw/redis';
import { openAITarget, runStreams, type StreamSample } from '../load.ts';
import { type BenchStack, benchHeaders, startBenchStack } from '../stack.ts';
import { fmt } from '../stats.ts';
import { markdownTable } from '../table.ts';

/**
 * Three models whose queues' hash tags fall on the three masters of a fresh `redis-cli --cluster
 * create` (slots 0–5460, 5461–10922, 10923–16383): `{chat.sim-qwen-2.5-7b}` 4198,
 * `{chat.sim-mistral-7b}` 9638, `{chat.sim-llama-3-8b}` 11334. The run prints where each landed.
 */
export const REDIS_BENCH_MODELS = ['sim-qwen-2.5-7b', 'sim-mistral-7b', DEFAULT_MODEL];

export interface RedisBenchConfig {
  /** Streams measured per topology, spread evenly over the models. */
  requests: number;
  /** Streams in flight at once (the worker has as many slots per model). */
  concurrency: number;
  tokens: number;
}

export const REDIS_FULL: RedisBenchConfig = { requests: 3000, concurrency: 30, tokens: 32 };
export const REDIS_QUICK: RedisBenchConfig = { requests: 30, concurrency: 6, tokens: 8 };

/** One Redis node's counters at a moment. */
interface NodeReading {
  port: number;
  role: 'master' | 'replica';
  cpuS: number;
  /** used_memory_dataset, bytes. */
  usedMemory: number;
  keys: number;
  /** Per command: calls and µs (INFO commandstats, since CONFIG RESETSTAT). */
  commands: Map<string, { calls: number; usec: number }>;
}

const field = (info: string, name: string): number =>
  Number(info.match(new RegExp(`^${name}:([\\d.]+)`, 'm'))?.[1] ?? Number.NaN);

async function ask<T>(port: number, ...args: [string, ...string[]]): Promise<T> {
  const reply = await askPort<T>(port, ...args);
  if (reply === undefined) throw new Error(`Redis on port ${port} did not answer ${args.join(' ')}`);
  return reply;
}

async function readNode(port: number): Promise<NodeReading> {
  const info = await ask<string>(port, 'INFO', 'everything');
  const commands = new Map<string, { calls: number; usec: number }>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    commands.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return {
    port,
    role: /^role:master/m.test(info) ? 'master' : 'replica',
    cpuS: field(info, 'used_cpu_user') + field(info, 'used_cpu_sys'),
    // The data alone: used_memory also counts the replication backlog, which fills to its 1 MB
    // on a master whatever the load, and client buffers.
    usedMemory: field(info, 'used_memory_dataset'),
    keys: [...info.matchAll(/^db\d+:keys=(\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0),
    commands,
  };
}

/** A topology of the run: its variables for every service, its nodes, and how to stop it. */
interface Topology {
  name: string;
  env: Record<string, string>;
  ports(): number[];
  /** Which master port serves `key`'s slot (undefined: one node serves every key). */
  masterOf(key: string): Promise<number | undefined>;
  stop(): Promise<void>;
}

async function onePrimary(): Promise<Topology> {
  const server: RedisServerHandle = await spawnRedisServer();
  return {
    name: 'one primary',
    env: { REDIS_URL: server.url },
    ports: () => [server.port],
    masterOf: async () => undefined,
    stop: () => server.stop(),
  };
}

async function primaryAndReplica(): Promise<Topology> {
  const group: SentinelGroup = await spawnSentinelGroup();
  return {
    name: 'Sentinel, primary + replica',
    env: group.env,
    ports: () => group.servers.map((s) => s.port),
    masterOf: async () => undefined,
    stop: () => group.stop(),
  };
}

async function threeMasters(): Promise<Topology> {
  const cluster: RedisClusterHandle = await spawnRedisCluster();
  return {
    name: 'Cluster, 3 masters + 3 replicas',
    env: cluster.env,
    ports: () => cluster.servers.map((s) => s.port),
    masterOf: (key) => cluster.masterOf(key),
    stop: () => cluster.stop(),
  };
}

export interface RedisBenchRow {
  topology: string;
  ok: number;
  failed: number;
  tokens: number;
  wallS: number;
  /** Per node: the reading before and after the measured streams. */
  nodes: { before: NodeReading; after: NodeReading; holds: string[] }[];
  firstError?: string;
}

const sumCommands = (r: NodeReading) =>
  [...r.commands.values()].reduce((a, c) => ({ calls: a.calls + c.calls, usec: a.usec + c.usec }), {
    calls: 0,
    usec: 0,
  });

/** The stack on `topology`, three models on one worker, one api; a warm-up, then the measured run. */
async function measure(topology: Topology, cfg: RedisBenchConfig): Promise<RedisBenchRow> {
  const models = REDIS_BENCH_MODELS.join(',');
  const stack: BenchStack = await startBenchStack({
    redisEnv: topology.env,
    sim: {
      SIM_MODEL: models,
      SIM_TTFT_MS: '0',
      SIM_ITL_MS: '0',
      SIM_MAX_NUM_SEQS: String(cfg.concurrency * REDIS_BENCH_MODELS.length),
      SIM_OUTPUT_TOKENS: String(cfg.tokens),
    },
    worker: { WORKER_MODELS: models, WORKER_CONCURRENCY: String(cfg.concurrency) },
  });
  try {
    const target = openAITarget(
      `${stack.apiUrls[0]}/v1/chat/completions`,
      (i) => ({
        model: REDIS_BENCH_MODELS[i % REDIS_BENCH_MODELS.length],
        messages: [{ role: 'user', content: `redis bench request ${i}` }],
        max_tokens: cfg.tokens,
        stream: true,
      }),
      benchHeaders,
    );
    // Warm-up: every model's queue, every user's keys and every script exist before counting.
    await runStreams(target, cfg.concurrency * REDIS_BENCH_MODELS.length, cfg.concurrency);
    const ports = topology.ports();
    await Promise.all(ports.map((p) => ask(p, 'CONFIG', 'RESETSTAT')));
    const before = await Promise.all(ports.map(readNode));
    const { samples, wallMs } = await runStreams(target, cfg.requests, cfg.concurrency);
    // The worker settles a job (quota, places, summary) just after its last frame: let it finish.
    await new Promise((r) => setTimeout(r, 1000));
    const after = await Promise.all(ports.map(readNode));
    const keys = createKeys(stack.prefix, { cluster: 'REDIS_CLUSTER_NODES' in topology.env });
    const holds = new Map<number, string[]>();
    for (const model of REDIS_BENCH_MODELS) {
      const port = await topology.masterOf(`${keys.bullPrefix}:${keys.queueName(model)}:wait`);
      if (port !== undefined) holds.set(port, [...(holds.get(port) ?? []), `queue ${model}`]);
    }
    const global = await topology.masterOf(keys.models);
    if (global !== undefined) holds.set(global, [...(holds.get(global) ?? []), 'global keys']);
    return summarise(topology.name, samples, wallMs, before, after, holds);
  } finally {
    await stack.close();
  }
}

function summarise(
  topology: string,
  samples: StreamSample[],
  wallMs: number,
  before: NodeReading[],
  after: NodeReading[],
  holds: Map<number, string[]>,
): RedisBenchRow {
  const ok = samples.filter((s) => s.ok);
  return {
    topology,
    ok: ok.length,
    failed: samples.length - ok.length,
    tokens: ok.reduce((a, s) => a + s.tokens, 0),
    wallS: wallMs / 1000,
    nodes: before.map((b, i) => ({ before: b, after: after[i]!, holds: holds.get(b.port) ?? [] })),
    firstError: samples.find((s) => !s.ok)?.error,
  };
}

/** Per-job figures of one topology (masters and replicas apart). */
function perJob(row: RedisBenchRow) {
  const jobs = Math.max(1, row.ok);
  const masters = row.nodes.filter((n) => n.after.role === 'master');
  const replicas = row.nodes.filter((n) => n.after.role === 'replica');
  const cpuUs = (ns: typeof row.nodes) =>
    (ns.reduce((a, n) => a + (n.after.cpuS - n.before.cpuS), 0) * 1e6) / jobs;
  const commands = masters.map((n) => sumCommands(n.after));
  return {
    masterCpuUs: cpuUs(masters),
    replicaCpuUs: replicas.length ? cpuUs(replicas) : Number.NaN,
    commandUs: commands.reduce((a, c) => a + c.usec, 0) / jobs,
    calls: commands.reduce((a, c) => a + c.calls, 0) / jobs,
    memoryBytes: masters.reduce((a, n) => a + (n.after.usedMemory - n.before.usedMemory), 0) / jobs,
    keys: masters.reduce((a, n) => a + (n.after.keys - n.before.keys), 0) / jobs,
    cpuPerTokenUs: (cpuUs(masters) * jobs) / Math.max(1, row.tokens),
  };
}

/** The commands that cost the most on `row`'s masters, summed over them: name → per job. */
function topCommands(row: RedisBenchRow): Map<string, { calls: number; usec: number }> {
  const jobs = Math.max(1, row.ok);
  const all = new Map<string, { calls: number; usec: number }>();
  for (const n of row.nodes.filter((x) => x.after.role === 'master')) {
    for (const [name, c] of n.after.commands) {
      const a = all.get(name) ?? { calls: 0, usec: 0 };
      all.set(name, { calls: a.calls + c.calls / jobs, usec: a.usec + c.usec / jobs });
    }
  }
  return all;
}

function report(rows: RedisBenchRow[], cfg: RedisBenchConfig): string[] {
  const figures = rows.map(perJob);
  const lines = [
    `redis: ${cfg.requests} streams per topology over ${REDIS_BENCH_MODELS.length} models (${REDIS_BENCH_MODELS.join(', ')}), ${cfg.concurrency} concurrent, ${cfg.tokens} tokens each, simulator TTFT 0 / ITL 0; one worker, one api; each Redis spawned for the run`,
    '',
    ...markdownTable(
      [
        'topology',
        'ok',
        'failed',
        'jobs/s',
        'Redis CPU µs/job (masters)',
        'replicas µs/job',
        'command µs/job',
        'commands/job',
        'CPU µs/token',
        'jobs/s per Redis core',
        'memory/job KiB',
        'keys/job',
      ],
      rows.map((r, i) => {
        const f = figures[i]!;
        return [
          r.topology,
          String(r.ok),
          String(r.failed),
          fmt(r.ok / r.wallS, 0),
          fmt(f.masterCpuUs, 0),
          fmt(f.replicaCpuUs, 0),
          fmt(f.commandUs, 0),
          fmt(f.calls, 1),
          fmt(f.cpuPerTokenUs, 1),
          fmt(1e6 / f.masterCpuUs, 0),
          fmt(f.memoryBytes / 1024, 2),
          fmt(f.keys, 2),
        ];
      }),
    ),
    '',
    'per node (share: of the masters’ process CPU):',
    '',
    ...markdownTable(
      ['topology', 'node', 'role', 'holds', 'CPU µs/job', 'share', 'commands/job', 'memory/job KiB'],
      rows.flatMap((r) => {
        const jobs = Math.max(1, r.ok);
        const masterCpu = r.nodes
          .filter((n) => n.after.role === 'master')
          .reduce((a, n) => a + n.after.cpuS - n.before.cpuS, 0);
        return r.nodes.map((n) => {
          const cpu = n.after.cpuS - n.before.cpuS;
          return [
            r.topology,
            String(n.after.port),
            n.after.role,
            n.holds.join(', ') || (n.after.role === 'master' ? 'jobs and users by hash' : ''),
            fmt((cpu * 1e6) / jobs, 0),
            n.after.role === 'master' ? `${fmt((cpu / masterCpu) * 100, 0)} %` : '',
            fmt(sumCommands(n.after).calls / jobs, 1),
            fmt((n.after.usedMemory - n.before.usedMemory) / jobs / 1024, 2),
          ];
        });
      }),
    ),
    '',
    'commands per job on the masters, by command time (the 12 costliest in any topology):',
    '',
  ];
  const tops = rows.map(topCommands);
  const costliest = new Map<string, number>();
  for (const t of tops)
    for (const [name, c] of t) costliest.set(name, Math.max(costliest.get(name) ?? 0, c.usec));
  const names = [...costliest.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([name]) => name);
  lines.push(
    ...markdownTable(
      ['command', ...rows.flatMap((r) => [`${r.topology}: calls`, 'µs'])],
      names.map((name) => [
        name,
        ...tops.flatMap((t) => [fmt(t.get(name)?.calls ?? 0, 2), fmt(t.get(name)?.usec ?? 0, 1)]),
      ]),
    ),
  );
  for (const r of rows) if (r.firstError) lines.push('', `${r.topology}: first failure: ${r.firstError}`);
  return lines;
}

export async function redisScenario(
  cfg: RedisBenchConfig,
): Promise<{ rows: RedisBenchRow[]; lines: string[] }> {
  const rows: RedisBenchRow[] = [];
  for (const start of [onePrimary, primaryAndReplica, threeMasters]) {
    const topology = await start();
    try {
      rows.push(await measure(topology, cfg));
    } finally {
      await topology.stop();
    }
  }
  return { rows, lines: report(rows, cfg) };
}
