/**
 * `pnpm bench [--quick] [--only name,name]`: starts what it needs (Redis reused or spawned,
 * simulator, worker, api as real processes), runs each scenario, prints one table per scenario
 * comparing the gateway with the simulator measured directly in the same run.
 */
import { cpus, totalmem } from 'node:os';
import { LATENCY_FULL, LATENCY_QUICK, latencyScenario } from './scenarios/latency.ts';
import { stopBenchRedis } from './stack.ts';

const args = process.argv.slice(2).filter((a) => a !== '--');
const quick = args.includes('--quick');
const onlyIdx = args.indexOf('--only');
const only = onlyIdx >= 0 ? new Set((args[onlyIdx + 1] ?? '').split(',')) : undefined;

interface Scenario {
  name: string;
  run(): Promise<{ lines: string[]; failed: number }>;
}

const scenarios: Scenario[] = [
  {
    name: 'latency',
    async run() {
      const { rows, lines } = await latencyScenario(quick ? LATENCY_QUICK : LATENCY_FULL);
      return { lines, failed: rows.reduce((a, r) => a + r.failed, 0) };
    },
  },
];

async function main(): Promise<void> {
  const cpu = cpus()[0]?.model ?? 'unknown cpu';
  console.log(
    `# pnpm bench${quick ? ' --quick' : ''} — ${new Date().toISOString()} — ${cpus().length} cores (${cpu}), ` +
      `${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
  );
  let failed = 0;
  for (const s of scenarios) {
    if (only && !only.has(s.name)) continue;
    console.log('');
    const result = await s.run();
    failed += result.failed;
    for (const line of result.lines) console.log(line);
  }
  await stopBenchRedis();
  // A benchmark whose requests failed measured nothing useful: say so in the exit code.
  if (failed > 0) {
    console.error(`\n${failed} request(s) failed`);
    process.exitCode = 1;
  }
}

main().catch(async (err: Error) => {
  console.error(`bench failed: ${err.stack ?? err.message}`);
  await stopBenchRedis();
  process.exit(1);
});
