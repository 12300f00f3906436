import { removeStackKeys, stackPrefix } from '@llmgw/e2e/spawned';
import { createKeys, createRedis, quitQuietly, rateLimit, waitReady } from '@llmgw/redis';
import { benchRedis } from '../stack.ts';
import { fmt, percentile } from '../stats.ts';
import { markdownTable, targetLine } from '../table.ts';

export interface RateLimitConfig {
  /** Decisions at each concurrency; the single-caller run shows the latency one request pays. */
  decisions: number;
  singleDecisions: number;
  concurrency: number;
}

export const RATELIMIT_FULL: RateLimitConfig = { decisions: 200_000, singleDecisions: 5000, concurrency: 64 };
export const RATELIMIT_QUICK: RateLimitConfig = { decisions: 2000, singleDecisions: 200, concurrency: 16 };

export interface RateLimitRow {
  what: string;
  concurrency: number;
  ok: number;
  failed: number;
  perS: number;
  p50: number;
  p99: number;
}

/** `total` calls of `op`, `concurrency` callers at a time, each call timed. */
async function drive(
  what: string,
  total: number,
  concurrency: number,
  op: (caller: number, i: number) => Promise<boolean>,
): Promise<RateLimitRow> {
  const lat: number[] = [];
  let next = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, caller) => {
      while (next < total) {
        const i = next++;
        const t0 = performance.now();
        try {
          if (!(await op(caller, i))) failed++;
        } catch {
          failed++;
        }
        lat.push(performance.now() - t0);
      }
    }),
  );
  const wallS = (performance.now() - started) / 1000;
  return {
    what,
    concurrency,
    ok: total - failed,
    failed,
    perS: total / wallS,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
  };
}

/**
 * The sliding-window limiter the api runs before every chat request (rate-limit-1.lua through
 * `rateLimit`), on a `command` connection (auto-pipelined, as in the api), next to a bare PING on
 * the same connection: the floor of any Redis round trip from this process.
 */
export async function rateLimitScenario(
  cfg: RateLimitConfig,
): Promise<{ rows: RateLimitRow[]; lines: string[] }> {
  const url = await benchRedis();
  const redis = createRedis(url, 'command', 'bench-ratelimit');
  redis.on('error', () => {});
  await waitReady(redis);
  const prefix = stackPrefix('bench');
  const keys = createKeys(prefix);
  const users = Math.max(cfg.concurrency, 1);
  // Limits the bench tier never reaches: every decision is an admission (the common case).
  const decide = async (caller: number, i: number) =>
    (await rateLimit(redis, keys.rateLimit(`user-${caller % users}`), 1_000_000_000, 60_000, `m${i}`))
      .allowed;
  const ping = async () => (await redis.ping()) === 'PONG';
  try {
    await drive('warm-up', 1000, cfg.concurrency, decide);
    const rows = [
      await drive('PING (baseline)', cfg.singleDecisions, 1, ping),
      await drive('rateLimit decision', cfg.singleDecisions, 1, decide),
      await drive('PING (baseline)', cfg.decisions, cfg.concurrency, ping),
      await drive('rateLimit decision', cfg.decisions, cfg.concurrency, decide),
    ];
    const loaded = rows[3]!;
    const lines = [
      `rate limiter: rate-limit-1.lua via rateLimit() on one auto-pipelined command connection to ${url}, ${users} users, limit never reached`,
      '',
      ...markdownTable(
        ['operation', 'concurrent callers', 'ok', 'failed', 'per second', 'latency p50 ms', 'latency p99 ms'],
        rows.map((r) => [
          r.what,
          String(r.concurrency),
          String(r.ok),
          String(r.failed),
          fmt(r.perS, 0),
          fmt(r.p50, 3),
          fmt(r.p99, 3),
        ]),
      ),
      '',
      targetLine(
        `≥ 20,000 decisions/s (${fmt(loaded.perS, 0)} at ${cfg.concurrency} callers)`,
        loaded.perS >= 20_000,
      ),
      `latency a request pays for its decision: p50 ${fmt(rows[1]!.p50, 3)} ms, p99 ${fmt(rows[1]!.p99, 3)} ms alone; p50 ${fmt(loaded.p50, 3)} ms, p99 ${fmt(loaded.p99, 3)} ms under ${cfg.concurrency} callers`,
    ];
    return { rows, lines };
  } finally {
    await quitQuietly(redis);
    await removeStackKeys(url, prefix).catch(() => {});
  }
}
