import { DEFAULT_MODEL } from '@llmgw/config';
import { type ChatJob, JOB_VERSION } from '@llmgw/protocol';
import { createKeys, createRedis, enqueueBatchJobs, quitQuietly, waitReady } from '@llmgw/redis';
import { Queue } from 'bullmq';
import { runStreams, type StreamSample, streamStats } from '../load.ts';
import { sleep } from '../probes.ts';
import { benchRedis, gatewayV1Target, startBenchStack } from '../stack.ts';
import { fmt, fmtSigned } from '../stats.ts';
import { markdownTable } from '../table.ts';

export interface BatchBenchConfig {
  ttftMs: number;
  itlMs: number;
  /** Worker (and simulator) slots. */
  slots: number;
  /** Batch requests enqueued before the interactive load starts. */
  batchRequests: number;
  batchTokens: number;
  interactiveRequests: number;
  interactiveConcurrency: number;
  interactiveTokens: number;
}

export const BATCH_FULL: BatchBenchConfig = {
  ttftMs: 50,
  itlMs: 10,
  slots: 8,
  batchRequests: 5000,
  batchTokens: 64,
  interactiveRequests: 600,
  interactiveConcurrency: 4,
  interactiveTokens: 32,
};
export const BATCH_QUICK: BatchBenchConfig = {
  ...BATCH_FULL,
  batchRequests: 60,
  interactiveRequests: 30,
  interactiveConcurrency: 2,
};

export interface BatchRow {
  variant: 'interactive alone' | 'interactive + batch';
  ok: number;
  failed: number;
  streamsPerS: number;
  ttftP50: number;
  ttftP99: number;
  /** Batch requests the backend finished while the interactive load ran. */
  batchDone: number;
  firstError?: string;
}

/**
 * The batch lane's promise, measured: the same interactive load (fewer streams than slots, so
 * idle slots exist) on a stack with no batch, then on a fresh one with `batchRequests` batch
 * requests queued before it starts. Interactive TTFT may rise by at most the time one batch
 * request's slot takes to free (TTFT + tokens × ITL of a batch request, printed), and its
 * throughput should not drop. The batch requests are put on the batch queue as the Batch API
 * does (same job shape).
 */
export async function batchScenario(cfg: BatchBenchConfig): Promise<{ rows: BatchRow[]; lines: string[] }> {
  const rows = [await runVariant(cfg, false), await runVariant(cfg, true)];
  const [alone, withBatch] = rows as [BatchRow, BatchRow];
  const slotFreesMs = cfg.ttftMs + cfg.batchTokens * cfg.itlMs;
  const lines = [
    `batch: simulator TTFT ${cfg.ttftMs} ms, ITL ${cfg.itlMs} ms, ${cfg.slots} slots (BATCH_MAX_SLOTS_FRACTION 0.5: ${Math.floor(cfg.slots / 2)} for batches); ${cfg.batchRequests} batch requests of ${cfg.batchTokens} tokens queued; interactive: ${cfg.interactiveRequests} streams of ${cfg.interactiveTokens} tokens, ${cfg.interactiveConcurrency} concurrent, /v1/chat/completions`,
    '',
    ...markdownTable(
      ['variant', 'ok', 'failed', 'streams/s', 'TTFT p50 ms', 'TTFT p99 ms', 'batch requests done meanwhile'],
      rows.map((r) => [
        r.variant,
        String(r.ok),
        String(r.failed),
        fmt(r.streamsPerS),
        fmt(r.ttftP50),
        fmt(r.ttftP99),
        String(r.batchDone),
      ]),
    ),
    '',
    `with the batch: TTFT p50 ${fmtSigned(withBatch.ttftP50 - alone.ttftP50)} ms, p99 ${fmtSigned(withBatch.ttftP99 - alone.ttftP99)} ms ` +
      `(a batch request's slot frees within ${slotFreesMs} ms); throughput ${fmtSigned(((withBatch.streamsPerS - alone.streamsPerS) / alone.streamsPerS) * 100)} %`,
  ];
  for (const r of rows) if (r.firstError) lines.push(`first error (${r.variant}): ${r.firstError}`);
  return { rows, lines };
}

async function runVariant(cfg: BatchBenchConfig, withBatch: boolean): Promise<BatchRow> {
  const slots = String(cfg.slots);
  const stack = await startBenchStack({
    sim: { SIM_TTFT_MS: String(cfg.ttftMs), SIM_ITL_MS: String(cfg.itlMs), SIM_MAX_NUM_SEQS: slots },
    worker: { WORKER_CONCURRENCY: slots, BATCH_MAX_SLOTS_FRACTION: '0.5' },
  });
  const redis = createRedis(await benchRedis(), 'command', 'bench-batch');
  const keys = createKeys(stack.prefix);
  const queue = new Queue(keys.batchQueueName(DEFAULT_MODEL), { connection: redis, prefix: keys.bullPrefix });
  try {
    await waitReady(redis);
    const batchId = `bench-${stack.prefix.slice(-8)}`;
    const done = async () => Number((await redis.hget(keys.batch(batchId), 'completed')) ?? 0);
    if (withBatch) {
      await redis.hset(keys.batch(batchId), {
        status: 'in_progress',
        total: cfg.batchRequests,
        completed: 0,
        failed: 0,
      });
      await redis.pexpire(keys.batch(batchId), 3_600_000);
      // As /v1/batches enqueues them (the api's chunks of 500, finished jobs removed).
      await enqueueBatchJobs(
        queue,
        Array.from({ length: cfg.batchRequests }, (_, i) => batchJob(batchId, i, cfg.batchTokens)),
      );
      // The lane has filled its slots: the interactive load meets a busy batch.
      for (let i = 0; i < 100 && (await done()) === 0; i++) await sleep(50);
    }
    const before = await done();
    const target = gatewayV1Target(stack.apiUrls[0]!, 'interactive', cfg.interactiveTokens);
    const { samples, wallMs } = await runStreams(target, cfg.interactiveRequests, cfg.interactiveConcurrency);
    const batchDone = (await done()) - before;
    return summarise(withBatch ? 'interactive + batch' : 'interactive alone', samples, wallMs, batchDone);
  } finally {
    // Whatever of the batch is left goes with the stack's prefix.
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
    await quitQuietly(redis);
    await stack.close();
  }
}

function batchJob(batchId: string, index: number, tokens: number): ChatJob {
  return {
    v: JOB_VERSION,
    kind: 'chat',
    replyTo: `${batchId}-${index}`,
    graceMs: -1,
    requestId: `${batchId}-${index}`,
    model: DEFAULT_MODEL,
    messages: [{ role: 'user', content: `batch request ${index}` }],
    params: { max_tokens: tokens },
    userId: 'bench-batch-owner',
    enqueuedAt: Date.now(),
    batch: { id: batchId, index, customId: `req-${index}` },
  };
}

function summarise(
  variant: BatchRow['variant'],
  samples: StreamSample[],
  wallMs: number,
  batchDone: number,
): BatchRow {
  return { variant, ...streamStats(samples, wallMs), batchDone };
}
