import { Agent } from 'node:http';
import { DEFAULT_MODEL } from '@llmgw/config';
import { postSSE, type SSEResult, until } from '@llmgw/devkit';
import { openAITarget, seedTarget, type Target } from '../load.ts';
import {
  heapSnapshot,
  openFilesLimit,
  resetSimStats,
  rssMiB,
  type SimStatsView,
  simStats,
  sleep,
} from '../probes.ts';
import { benchHeaders, startBenchStack } from '../stack.ts';
import { fmt } from '../stats.ts';
import { markdownTable, type TargetResult, targetLine } from '../table.ts';

export interface IdleConfig {
  streams: number;
  /** New streams per second at most while opening. */
  openPerS: number;
  /**
   * Streams sent but not yet open, at most: a burst of thousands would overflow the api's listen
   * backlog (511) and measure connection resets instead of held streams.
   */
  maxOpening: number;
  ttftMs: number;
  itlMs: number;
  /** Steady state before sampling, ms. */
  settleMs: number;
}

export const IDLE_FULL: IdleConfig = {
  streams: 5000,
  openPerS: 1000,
  maxOpening: 200,
  ttftMs: 500,
  itlMs: 1000,
  settleMs: 3000,
};
export const IDLE_QUICK: IdleConfig = {
  streams: 100,
  openPerS: 1000,
  maxOpening: 200,
  ttftMs: 200,
  itlMs: 1000,
  settleMs: 500,
};

/** How long all streams may take to open before the scenario gives up and samples anyway. */
const OPEN_TIMEOUT_MS = 120_000;
/** Sockets per stream and process, plus what a process opens besides (Redis, logs, modules). */
const FD_MARGIN = 500;

export interface IdleRow {
  path: string;
  process: string;
  open: number;
  streaming: number;
  failed: number;
  openS: number;
  before: number;
  atOpen: number;
  after: number;
  peakRunning: number;
  firstError?: string;
}

interface HeldStreams {
  /** Streams open: admitted (a `queued` comment) or streaming (a token), and not ended. */
  open: number;
  /** Of those, streams that received a token: generating at the simulator end to end. */
  streaming: number;
  /** Seconds until every stream had its first token (or the wait gave up). */
  openS: number;
  failed: number;
  firstError?: string;
  close(): Promise<void>;
}

interface StreamState {
  queued: boolean;
  token: boolean;
  ended: boolean;
}

/**
 * Opens `cfg.streams` streams (at most `openPerS`, at most `maxOpening` not yet answered) and
 * keeps them open. Waits until each has received its first token (it really is relayed end to
 * end), or has ended (a failure), or OPEN_TIMEOUT_MS passed; a stream only admitted and queued
 * (a `queued` comment) still counts as open then, and the table shows how many were streaming.
 */
async function holdStreams(target: Target, cfg: IdleConfig): Promise<HeldStreams> {
  const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  let closing = false;
  let firstError: string | undefined;
  let answered = 0;
  const states: StreamState[] = [];
  const done: Promise<SSEResult | undefined>[] = [];
  const started = performance.now();
  const answer = (state: StreamState) => {
    if (!state.queued && !state.token && !state.ended) answered++;
  };
  const batch = Math.max(1, Math.round(cfg.openPerS / 20));
  for (let i = 0; i < cfg.streams; i++) {
    if (i > 0 && i % batch === 0) await sleep(50);
    while (i - answered >= cfg.maxOpening) await sleep(10);
    const state: StreamState = { queued: false, token: false, ended: false };
    states.push(state);
    const endedEarly = (why: string) => {
      if (closing) return;
      answer(state);
      state.ended = true;
      firstError ??= why;
    };
    done.push(
      postSSE(target.url, target.body(i), {
        agent,
        headers: target.headers?.(i),
        onData: (data) => {
          if (!state.token && target.tokensIn(data) > 0) {
            answer(state);
            state.token = true;
          }
          return undefined;
        },
        onComment: (c) => {
          if (!state.queued && c.startsWith('queued')) {
            answer(state);
            state.queued = true;
          }
          return undefined;
        },
      }).then(
        (res) => {
          endedEarly(
            `ended before the bench closed it: status ${res.status}, ${res.data.at(-1) ?? res.body.slice(0, 200)}`,
          );
          return res;
        },
        (err: Error) => {
          endedEarly(err.message);
          return undefined;
        },
      ),
    );
  }
  await until(() => states.every((s) => s.token || s.ended), OPEN_TIMEOUT_MS, 100);
  const openS = (performance.now() - started) / 1000;
  const open = states.filter((s) => (s.token || s.queued) && !s.ended).length;
  const streaming = states.filter((s) => s.token && !s.ended).length;
  return {
    open,
    streaming,
    openS,
    failed: cfg.streams - open,
    firstError:
      firstError ??
      (open < cfg.streams ? `${cfg.streams - open} streams not open after ${OPEN_TIMEOUT_MS} ms` : undefined),
    async close() {
      closing = true;
      // Destroys every socket of the agent, in use or not: all clients leave at once.
      agent.destroy();
      await Promise.all(done);
    },
  };
}

/** Waits until the simulator runs nothing (every abort propagated), then a moment for the GC. */
async function drained(simUrl: string): Promise<void> {
  await until(async () => {
    const s: SimStatsView = await simStats(simUrl);
    return s.running === 0 && s.waiting === 0;
  }, 60_000);
  await sleep(2000);
}

/**
 * Memory of one api process holding thousands of mostly idle streams (a slow simulator: first
 * token after TTFT, then one a second), next to the simulator holding the same number directly.
 * RSS is VmRSS from /proc: before, once every stream is open, and after all clients left.
 */
export async function idleScenario(
  cfg: IdleConfig,
): Promise<{ rows: IdleRow[]; lines: string[]; targets: TargetResult[] }> {
  const limit = openFilesLimit();
  if (limit < cfg.streams + FD_MARGIN) {
    throw new Error(
      `idle streams: the open-files limit is ${limit}, below ${cfg.streams + FD_MARGIN}; raise it (ulimit -n) and rerun`,
    );
  }
  const slots = String(cfg.streams + 100);
  const stack = await startBenchStack({
    sim: {
      SIM_TTFT_MS: String(cfg.ttftMs),
      SIM_ITL_MS: String(cfg.itlMs),
      SIM_MAX_NUM_SEQS: slots,
      // Hours at one token a second: every stream stays open until the bench leaves.
      SIM_OUTPUT_TOKENS: '4000',
    },
    worker: { WORKER_CONCURRENCY: slots },
    api: { QUEUE_TIMEOUT_MS: '600000' },
  });
  try {
    const messages = (i: number) => [{ role: 'user', content: `idle stream ${i}` }];
    const sim = stack.sim.child.pid;
    const api = stack.apis[0]!.child.pid;
    const worker = stack.workers[0]!.child.pid;
    const rows: IdleRow[] = [];

    const direct = openAITarget(`${stack.simUrl}/v1/chat/completions`, (i) => ({
      model: DEFAULT_MODEL,
      messages: messages(i),
      max_tokens: 4000,
      stream: true,
    }));
    const simBefore = rssMiB(sim);
    await resetSimStats(stack.simUrl);
    const d = await holdStreams(direct, cfg);
    await sleep(cfg.settleMs);
    const simAtOpen = rssMiB(sim);
    const dPeak = (await simStats(stack.simUrl)).peak_running;
    await d.close();
    await drained(stack.simUrl);
    rows.push({
      path: 'direct (simulator)',
      process: 'sim',
      open: d.open,
      streaming: d.streaming,
      failed: d.failed,
      openS: d.openS,
      before: simBefore,
      atOpen: simAtOpen,
      after: rssMiB(sim),
      peakRunning: dPeak,
      firstError: d.firstError,
    });

    const gateway = seedTarget(
      `${stack.apiUrls[0]}/chat`,
      (i) => ({ messages: messages(i), max_tokens: 4000 }),
      benchHeaders,
    );
    const before = { api: rssMiB(api), worker: rssMiB(worker), sim: rssMiB(sim) };
    const snapshots = [await heapSnapshot(api)];
    await resetSimStats(stack.simUrl);
    const g = await holdStreams(gateway, cfg);
    await sleep(cfg.settleMs);
    const atOpen = { api: rssMiB(api), worker: rssMiB(worker), sim: rssMiB(sim) };
    snapshots.push(await heapSnapshot(api));
    const gPeak = (await simStats(stack.simUrl)).peak_running;
    await g.close();
    await drained(stack.simUrl);
    const after = { api: rssMiB(api), worker: rssMiB(worker), sim: rssMiB(sim) };
    for (const p of ['api', 'worker', 'sim'] as const) {
      rows.push({
        path: 'gateway (/chat)',
        process: p,
        open: g.open,
        streaming: g.streaming,
        failed: p === 'api' ? g.failed : 0,
        openS: g.openS,
        before: before[p],
        atOpen: atOpen[p],
        after: after[p],
        peakRunning: gPeak,
        firstError: p === 'api' ? g.firstError : undefined,
      });
    }
    const apiRow = rows[1]!;
    const apiMB = (apiRow.atOpen * 2 ** 20) / 1e6;
    const apiMet = apiRow.open === cfg.streams && apiMB <= 300;
    const target: TargetResult = {
      measure: `api RSS with ${cfg.streams} idle streams (/chat)`,
      measured: `${fmt(apiMB)} MB${apiRow.open < cfg.streams ? ` (only ${apiRow.open} of ${cfg.streams} open)` : ''}`,
      target: '≤ 300 MB',
      met: apiMet,
    };
    const lines = [
      `idle streams: ${cfg.streams} streams opened (≤ ${cfg.openPerS}/s, ≤ ${cfg.maxOpening} opening at once) and held (simulator TTFT ${cfg.ttftMs} ms, ITL ${cfg.itlMs} ms); RSS (VmRSS) of each process; open = admitted (queued comment) or streaming (first token received), waited for until every stream streams`,
      '',
      ...markdownTable(
        [
          'path',
          'process',
          'open',
          'of which streaming',
          'failed',
          'all streaming after s',
          'sim peak running',
          'RSS before MiB',
          `RSS at ${cfg.streams} open MiB`,
          'RSS after MiB',
          'per stream KiB',
        ],
        rows.map((r) => [
          r.path,
          r.process,
          String(r.open),
          String(r.streaming),
          String(r.failed),
          fmt(r.openS),
          String(r.peakRunning),
          fmt(r.before),
          fmt(r.atOpen),
          fmt(r.after),
          fmt(((r.atOpen - r.before) * 1024) / Math.max(1, r.open), 0),
        ]),
      ),
      '',
      targetLine(`api RSS ≤ 300 MB with ${cfg.streams} open (${fmt(apiMB)} MB)`, apiMet),
      ...rows.filter((r) => r.firstError).map((r) => `first failure (${r.path}): ${r.firstError}`),
      ...(snapshots.every(Boolean)
        ? [`api heap snapshots (before, at ${cfg.streams} open): ${snapshots.join(' ')}`]
        : []),
    ];
    return { rows, lines, targets: [target] };
  } finally {
    await stack.close();
  }
}
