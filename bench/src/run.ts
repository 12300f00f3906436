/**
 * `pnpm bench [--quick] [--only name,name]`: starts what it needs (Redis reused or spawned,
 * simulator, worker, api as real processes; nginx, Portkey and LiteLLM in front of the simulator
 * for the latency and throughput scenarios; LiteLLM's venv made or updated first, except with
 * `--quick`), runs each scenario, prints one table per scenario comparing the gateway with the
 * simulator measured directly and with those peers, in the same run, and at the end one table of the hot-path targets (issue 17) the scenarios that ran measured. Exits
 * non-zero when any request failed (a benchmark of failing requests measured nothing useful).
 */
import { cpus, loadavg, totalmem } from 'node:os';
import { stopAllSpawned } from '@llmgw/e2e/spawned';
import { prepareLitellm } from './peers/litellm.ts';
import { stopAllPeers } from './peers/process.ts';
import { SCENARIOS } from './scenarios/index.ts';
import { stopBenchRedis } from './stack.ts';
import { type TargetResult, targetsTable } from './table.ts';

function parseArgs(argv: string[]): { quick: boolean; only: Set<string> | undefined } {
  const args = argv.filter((a) => a !== '--');
  const onlyIdx = args.indexOf('--only');
  const only = onlyIdx >= 0 ? new Set((args[onlyIdx + 1] ?? '').split(',').filter(Boolean)) : undefined;
  const known = new Set(SCENARIOS.map((s) => s.name));
  const unknown = [...(only ?? [])].filter((n) => !known.has(n));
  if ((only && only.size === 0) || unknown.length > 0) {
    throw new Error(
      `--only takes a comma list of: ${[...known].join(', ')} (got ${args[onlyIdx + 1] ?? 'nothing'})`,
    );
  }
  return { quick: args.includes('--quick'), only };
}

async function main(): Promise<void> {
  const { quick, only } = parseArgs(process.argv.slice(2));
  const cpu = cpus()[0]?.model ?? 'unknown cpu';
  console.log(
    `# pnpm bench${quick ? ' --quick' : ''} — ${new Date().toISOString()} — ${cpus().length} cores (${cpu}), ` +
      `${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  );
  // The peered scenarios run LiteLLM from .venv-litellm: pip only when its requirements changed,
  // and never for --quick (`pnpm test` runs it), which uses the venv if there (1 worker) or skips
  // LiteLLM.
  if (!only || only.has('latency') || only.has('throughput')) await prepareLitellm({ quick });
  let failed = 0;
  const targets: TargetResult[] = [];
  for (const s of SCENARIOS) {
    if (only && !only.has(s.name)) continue;
    console.log(`\n## ${s.name}\n`);
    const result = await s.run(quick);
    failed += result.failed;
    targets.push(...(result.targets ?? []));
    for (const line of result.lines) console.log(line);
  }
  if (targets.length > 0) console.log(['', '## targets (issue 17)', '', ...targetsTable(targets)].join('\n'));
  await stopBenchRedis();
  if (failed > 0) {
    console.error(`\n${failed} request(s) failed`);
    process.exitCode = 1;
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, async () => {
    console.error(`\n${signal}: stopping the bench processes`);
    await Promise.all([stopAllSpawned(), stopAllPeers()]);
    await stopBenchRedis();
    process.exit(130);
  });
}

main().catch(async (err: Error) => {
  console.error(`bench failed: ${err.stack ?? err.message}`);
  await Promise.all([stopAllSpawned(), stopAllPeers()]);
  await stopBenchRedis();
  process.exit(1);
});
