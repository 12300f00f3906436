import { randomBytes } from 'node:crypto';
import type { Logger } from '@llmgw/observability';
import { BatchResult, type DoneEvent, type ErrorType, Transcript } from '@llmgw/protocol';
import { batchJobId, type FileStore, type Keys, newFileId, recordBatchResult } from '@llmgw/redis';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { apiErrorFromJob, errorBody } from '../errors/index.ts';
import { bodyOf, type Rendition } from '../wire/rendition.ts';
import type { BatchStatus } from './bodies.ts';
import { throwFirst } from './exec.ts';

/** Results read per round trip while the output is written. */
const READ_CHUNK = 500;

/**
 * A batch's requests, READ_CHUNK at a time: their indices (as result fields), their
 * `[custom_id, model]` entries (keys.batchIds) and their recorded results (null: not ended).
 */
async function* requestChunks(redis: Redis, keys: Keys, id: string, total: number) {
  for (let start = 0; start < total; start += READ_CHUNK) {
    const end = Math.min(total, start + READ_CHUNK) - 1;
    const indices = Array.from({ length: end - start + 1 }, (_, k) => String(start + k));
    const [ids, results] = await Promise.all([
      redis.lrange(keys.batchIds(id), start, end),
      redis.hmget(keys.batchResults(id), ...indices),
    ]);
    yield { indices, ids, results };
  }
}
/** A batch still `validating` after this long lost the replica that was checking it. */
const VALIDATING_STALE_MS = 15 * 60_000;
/** How long one replica holds a batch's finalization before another may take it over. */
const LEASE_MS = 5 * 60_000;

export interface FinalizerOptions {
  redis: Redis;
  keys: Keys;
  log: Logger;
  store: FileStore;
  /** A model's batch queue: an expired batch's waiting requests are taken off it. */
  batchQueue?: (model: string) => Queue;
  /** FILE_TTL_DAYS in ms: the output files' life. */
  fileTtlMs: number;
  onStatus?: (status: BatchStatus) => void;
  now?: () => number;
}

/**
 * A batch's end (issue 25 §2, §4): once every request has ended (completed + failed + cancelled
 * = total), or its window is past, one api replica (a lease, SET NX PX) writes its output file
 * and its error file in OpenAI's line format and sets the final status. The bodies are rendered
 * from the recorded deltas by the endpoint's own renderer (wire/rendition.ts), so an output line
 * holds what the endpoint would have answered.
 */
export class BatchFinalizer {
  private readonly now: () => number;

  constructor(private readonly opts: FinalizerOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Finalizes the batch if it is due; true once it is final (here or elsewhere). */
  async finalizeIfDue(id: string): Promise<boolean> {
    const { redis, keys } = this.opts;
    const h = await redis.hgetall(keys.batch(id));
    if (h.user === undefined) return true;
    const status = h.status as BatchStatus;
    if (status === 'validating') {
      // Its creating replica died while checking the file (that takes seconds): nothing was queued.
      if (this.now() - Number(h.created_at) < VALIDATING_STALE_MS) return false;
      await redis.hset(keys.batch(id), {
        status: 'failed',
        failed_at: this.now(),
        errors: JSON.stringify([
          {
            code: 'internal_error',
            message: 'the gateway stopped while checking the input file; create the batch again',
            param: null,
            line: null,
          },
        ]),
      });
      this.opts.onStatus?.('failed');
      return true;
    }
    if (status !== 'in_progress' && status !== 'cancelling' && status !== 'finalizing') return true;
    const total = Number(h.total ?? 0);
    const ended = Number(h.completed ?? 0) + Number(h.failed ?? 0) + Number(h.cancelled ?? 0);
    const expired = this.now() > Number(h.expires_at);
    // finalizing: a replica died while writing; its lease lapses and another starts over.
    if (ended < total && !expired && status !== 'finalizing') return false;
    const lease = await redis.set(keys.batchLease(id), String(process.pid), 'PX', LEASE_MS, 'NX');
    if (lease !== 'OK') return false;
    const final: BatchStatus =
      status === 'cancelling' || h.final === 'cancelled'
        ? 'cancelled'
        : ended >= total && h.final !== 'expired'
          ? 'completed'
          : 'expired';
    // Not in_progress any more: workers skip what has not started.
    await redis.hset(keys.batch(id), {
      final,
      ...(final === 'cancelled'
        ? {}
        : { status: 'finalizing', finalizing_at: h.finalizing_at || this.now() }),
    });
    if (final === 'expired' && this.opts.batchQueue) {
      await dropWaiting(this.opts.redis, this.opts.keys, this.opts.batchQueue, id, total, 'expired');
    }
    await this.write(id, h, final);
    return true;
  }

  private async write(id: string, h: Record<string, string>, final: BatchStatus): Promise<void> {
    const { redis, keys, store, fileTtlMs } = this.opts;
    const total = Number(h.total ?? 0);
    const createdAt = this.now();
    const userId = h.user!;
    const f: Rendition['f'] = h.endpoint === '/v1/completions' ? 'completion' : 'chat';
    const created = Math.floor(Number(h.created_at) / 1000);
    const output = store.writer(newFileId(createdAt));
    const errorsFile = store.writer(newFileId(createdAt));
    let outLines = 0;
    let errLines = 0;
    let notRun = 0;
    for await (const { indices, ids, results } of requestChunks(redis, keys, id, total)) {
      const out: string[] = [];
      const err: string[] = [];
      indices.forEach((field, k) => {
        const index = Number(field);
        const [customId, model] = JSON.parse(ids[k] ?? '[null,null]') as [string | null, string | null];
        const requestId = batchJobId(id, index);
        const lineId = `batch_req_${randomBytes(12).toString('hex')}`;
        const raw = results[k];
        const parsed = raw ? BatchResult.safeParse(JSON.parse(raw)) : undefined;
        const r = parsed?.success ? parsed.data : undefined;
        if (r?.ok) {
          const t = new Transcript();
          t.add(r.deltas);
          const done: DoneEvent = {
            id: requestId,
            seq: 0,
            attempt: 0,
            type: 'done',
            finishReason: r.finishReason,
            ...(r.stopSequence !== undefined && { stopSequence: r.stopSequence }),
            usage: r.usage,
          };
          const body = bodyOf({ f, model: model ?? '', created, rid: requestId }, requestId, t, done);
          out.push(
            JSON.stringify({
              id: lineId,
              custom_id: customId,
              response: { status_code: 200, request_id: requestId, body },
              error: null,
            }),
          );
          return;
        }
        if (r && !r.ok && r.error !== 'cancelled') {
          // The request ran and failed: the status and error body the endpoint would have sent.
          const e = apiErrorFromJob(r.error as ErrorType, r.message);
          err.push(
            JSON.stringify({
              id: lineId,
              custom_id: customId,
              response: {
                status_code: e.status,
                request_id: requestId,
                body: errorBody(e, 'openai', requestId),
              },
              error: { code: e.code, message: r.message },
            }),
          );
          return;
        }
        // Never ran: skipped by a cancel, or still waiting when the window closed.
        notRun++;
        const code = final === 'cancelled' ? 'batch_cancelled' : 'batch_expired';
        const message =
          final === 'cancelled'
            ? 'This request was not run: the batch was cancelled before it started.'
            : 'This request could not be executed before the completion window expired.';
        err.push(
          JSON.stringify({ id: lineId, custom_id: customId, response: null, error: { code, message } }),
        );
      });
      if (out.length > 0) await output.write(Buffer.from(`${out.join('\n')}\n`));
      if (err.length > 0) await errorsFile.write(Buffer.from(`${err.join('\n')}\n`));
      outLines += out.length;
      errLines += err.length;
    }
    const meta = (suffix: string, lines: number) => ({
      userId,
      filename: `${id}_${suffix}.jsonl`,
      purpose: 'batch_output',
      lines,
      createdAt,
      expiresAt: createdAt + fileTtlMs,
    });
    const outFile = outLines > 0 ? await output.commit(meta('output', outLines)) : undefined;
    if (!outFile) await output.abort();
    const errFile = errLines > 0 ? await errorsFile.commit(meta('error', errLines)) : undefined;
    if (!errFile) await errorsFile.abort();
    const at = this.now();
    await redis
      .multi()
      .hset(keys.batch(id), {
        status: final,
        [`${final}_at`]: at,
        ...(final !== 'cancelled' && !h.finalizing_at && { finalizing_at: at }),
        output_file_id: outFile?.id ?? '',
        error_file_id: errFile?.id ?? '',
        // An expired batch's requests that never ran count as failed (OpenAI's request_counts).
        ...(final === 'expired' && { failed: Number(h.failed ?? 0) + notRun }),
      })
      .exec()
      .then(throwFirst);
    // Not in the MULTI: the open list is a global key, in another slot on a Cluster.
    await redis.zrem(keys.openBatches, id);
    await redis.del(keys.batchLease(id));
    this.opts.onStatus?.(final);
    this.opts.log.info(
      { batch_id: id, status: final, output_lines: outLines, error_lines: errLines },
      'batch_finalized',
    );
  }
}

/**
 * Takes a batch's requests that have not started off their queues and records them `cancelled`
 * (once, as a worker would), so that a cancelled batch ends without waiting for an idle slot to
 * reach each: a model whose lane stays closed (interactive traffic) would hold it `cancelling`.
 * A request a worker holds already is left to it (BullMQ's remove refuses a locked job): it
 * skips it or finishes it. Returns how many were taken off.
 */
export async function dropWaiting(
  redis: Redis,
  keys: Keys,
  batchQueue: (model: string) => Queue,
  id: string,
  total: number,
  why: 'cancelled' | 'expired',
): Promise<number> {
  let dropped = 0;
  const message =
    why === 'cancelled'
      ? 'the batch was cancelled before this request started'
      : 'the batch expired before this request started';
  const skipped: BatchResult = { ok: false, error: 'cancelled', message };
  for await (const { indices, ids, results } of requestChunks(redis, keys, id, total)) {
    const removed = await Promise.all(
      indices.map(async (field, k) => {
        if (results[k] !== null) return 0;
        const [, model] = JSON.parse(ids[k] ?? '[null,null]') as [string | null, string | null];
        if (!model) return 0;
        const index = Number(field);
        if ((await batchQueue(model).remove(batchJobId(id, index))) !== 1) return 0;
        await recordBatchResult(redis, keys, id, index, skipped, 'cancelled');
        return 1;
      }),
    );
    dropped += removed.reduce<number>((a, b) => a + b, 0);
  }
  return dropped;
}

export interface SweepOptions {
  redis: Redis;
  keys: Keys;
  log: Logger;
  finalizer: BatchFinalizer;
  /** How often (ms): a cancel or the last request's end shows as final within about this. */
  intervalMs?: number;
}

/**
 * The api's periodic pass over the batches not yet final (keys.openBatches), on every replica
 * and run by one at a time (SET NX PX of keys.batchSweepLease): each finished, cancelled or
 * expired batch is finalized.
 */
export class BatchSweep {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly intervalMs: number;

  constructor(private readonly opts: SweepOptions) {
    this.intervalMs = opts.intervalMs ?? 1000;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.tick()
        .catch((err: Error) => this.opts.log.warn({ err: err.message }, 'batch_sweep_failed'))
        .finally(() => {
          this.running = undefined;
        });
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One pass; exported for tests. */
  async tick(): Promise<void> {
    const { redis, keys, finalizer } = this.opts;
    const lease = await redis.set(
      keys.batchSweepLease,
      '1',
      'PX',
      Math.max(100, this.intervalMs - 100),
      'NX',
    );
    if (lease !== 'OK') return;
    // Every open batch, oldest window first. Their ids only: a few thousand at most (each is a
    // whole file of requests), and a list read whole is not shifted by the removals below.
    const ids = await redis.zrange(keys.openBatches, '0', '-1');
    for (const id of ids) {
      try {
        if (await finalizer.finalizeIfDue(id)) await redis.zrem(keys.openBatches, id);
      } catch (err) {
        this.opts.log.warn({ batch_id: id, err: (err as Error).message }, 'batch_finalize_failed');
      }
    }
  }
}
