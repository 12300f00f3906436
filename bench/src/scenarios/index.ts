import type { TargetResult } from '../table.ts';
import { BATCH_FULL, BATCH_QUICK, batchScenario } from './batch.ts';
import { CANCEL_FULL, CANCEL_QUICK, cancelScenario } from './cancel.ts';
import { IDLE_FULL, IDLE_QUICK, idleScenario } from './idle.ts';
import { LATENCY_FULL, LATENCY_QUICK, latencyScenario } from './latency.ts';
import { RATELIMIT_FULL, RATELIMIT_QUICK, rateLimitScenario } from './ratelimit.ts';
import { REDIS_FULL, REDIS_QUICK, redisScenario } from './redis.ts';
import { THROUGHPUT_FULL, THROUGHPUT_QUICK, throughputScenario } from './throughput.ts';
import { TRACING_FULL, TRACING_QUICK, tracingScenario } from './tracing.ts';

export interface Scenario {
  name: string;
  /**
   * Runs it (its quick or its full settings): the lines to print, how many requests failed, and
   * the targets of issue 17 it measured (for the table `pnpm bench` ends with), if any.
   */
  run(quick: boolean): Promise<{ lines: string[]; failed: number; targets?: TargetResult[] }>;
}

/** One scenario from its function and its two settings. */
function scenario<S>(
  name: string,
  fn: (settings: S) => Promise<{ rows: { failed: number }[]; lines: string[]; targets?: TargetResult[] }>,
  quickSettings: S,
  fullSettings: S,
): Scenario {
  return {
    name,
    async run(quick) {
      const { rows, lines, targets } = await fn(quick ? quickSettings : fullSettings);
      return { lines, failed: rows.reduce((a, r) => a + r.failed, 0), targets };
    },
  };
}

/** Every scenario of `pnpm bench`, in the order it runs them. */
export const SCENARIOS: Scenario[] = [
  scenario('latency', latencyScenario, LATENCY_QUICK, LATENCY_FULL),
  scenario('throughput', throughputScenario, THROUGHPUT_QUICK, THROUGHPUT_FULL),
  scenario('idle', idleScenario, IDLE_QUICK, IDLE_FULL),
  scenario('cancel', cancelScenario, CANCEL_QUICK, CANCEL_FULL),
  scenario('ratelimit', rateLimitScenario, RATELIMIT_QUICK, RATELIMIT_FULL),
  scenario('redis', redisScenario, REDIS_QUICK, REDIS_FULL),
  scenario('tracing', tracingScenario, TRACING_QUICK, TRACING_FULL),
  scenario('batch', batchScenario, BATCH_QUICK, BATCH_FULL),
];
