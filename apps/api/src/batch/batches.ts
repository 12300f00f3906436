import { randomBytes } from 'node:crypto';
import type { Logger } from '@llmgw/observability';
import { type ChatJob, JOB_VERSION } from '@llmgw/protocol';
import {
  batchJobId,
  enqueueBatchJobs,
  FileGoneError,
  type FileStore,
  type Keys,
  type StoredFile,
} from '@llmgw/redis';
import type { Redis } from 'ioredis';
import type { Principal } from '../context.ts';
import { ApiError } from '../errors/index.ts';
import { firstIssue } from '../middleware/json-body.ts';
import type { ModelRegistry } from '../models/registry.ts';
import type { Dispatcher } from '../queue/dispatcher.ts';
import { completionInput } from '../routes/completions.ts';
import { refuseIfNotAllowed } from '../routes/generation.ts';
import { chatInput } from '../routes/openai-chat.ts';
import {
  BATCH_ID_PATTERN,
  BatchCreateRequest,
  type BatchesApi,
  type BatchList,
  BatchListQuery,
  type BatchObject,
  type BatchStatus,
} from './bodies.ts';
import { throwFirst } from './exec.ts';
import { dropWaiting } from './finalize.ts';
import { BatchInputCheck, type BatchInputError, type BatchRequest, parseBatchLine } from './input.ts';

/** An entry of a batch's `errors.data`: an input line's, or the batch's own (`internal_error`). */
type BatchError = Omit<BatchInputError, 'code'> & { code: string };

/** OpenAI's only completion window. */
export const BATCH_WINDOW_MS = 24 * 3600_000;
/** Requests read, their ids written and their jobs enqueued per step of a batch's creation. */
const CREATE_CHUNK = 500;

export interface BatchesOptions {
  redis: Redis;
  keys: Keys;
  log: Logger;
  /** The file store (its own connection): input files read, output files written. */
  store: FileStore;
  dispatcher: Pick<Dispatcher, 'batchQueue' | 'attempts'>;
  /** A line naming a model no worker ever served would wait out the window: refused instead. */
  models: Pick<ModelRegistry, 'snapshot'>;
  defaultModel: string;
  /** BATCH_MAX_REQUESTS. */
  maxRequests: number;
  /** BODY_LIMIT_BYTES: a line is one request's body. */
  maxLineBytes: number;
  /** FILE_TTL_DAYS in ms: how long the output files and the batch itself are kept after the window. */
  retentionMs: number;
  onStatus?: (status: BatchStatus) => void;
  now?: () => number;
}

/** A batch's hash (keys.batch) as read back. */
export type BatchHash = Record<string, string>;

/** `batch_` + the creation time (base 36, 9 digits) + 20 hex digits: ids sort by creation. */
export function newBatchId(nowMs: number): string {
  return `batch_${Math.floor(nowMs).toString(36).padStart(9, '0')}${randomBytes(10).toString('hex')}`;
}

/**
 * `/v1/batches` (issue 25 §2): create (the input file checked line by line, then every request
 * enqueued on its model's batch queue), retrieve, cancel, list. State is the batch's hash in
 * Redis (keys.batch), which workers count into; finalize.ts writes the output when all ended.
 * Only the batch's user sees it: for anyone else it does not exist (404).
 */
export class Batches implements BatchesApi {
  private readonly now: () => number;

  constructor(private readonly opts: BatchesOptions) {
    this.now = opts.now ?? Date.now;
  }

  async create(principal: Principal, body: unknown): Promise<BatchObject> {
    const parsed = BatchCreateRequest.safeParse(body ?? {});
    if (!parsed.success) {
      const { param, message } = firstIssue(parsed.error);
      throw new ApiError('invalid_request', message, param === undefined ? {} : { param });
    }
    const req = parsed.data;
    const { redis, keys } = this.opts;
    const { userId } = principal;
    const file = await this.inputFile(req.input_file_id, userId);
    const createdAt = this.now();
    const id = newBatchId(createdAt);
    const expiresAt = createdAt + BATCH_WINDOW_MS;
    const key = keys.batch(id);
    await storing(
      redis
        .multi()
        .hset(key, {
          user: userId,
          status: 'validating',
          endpoint: req.endpoint,
          input_file_id: file.id,
          completion_window: req.completion_window,
          created_at: createdAt,
          expires_at: expiresAt,
          metadata: JSON.stringify(req.metadata ?? null),
          total: 0,
          completed: 0,
          failed: 0,
          cancelled: 0,
        })
        .pexpireat(key, expiresAt + this.opts.retentionMs)
        .exec()
        .then(throwFirst),
    );
    const list = keys.userBatches(userId);
    await storing(
      redis
        .multi()
        .zadd(list, 0, id)
        .zremrangebylex(
          list,
          '-',
          `(${newBatchId(createdAt - BATCH_WINDOW_MS - this.opts.retentionMs).slice(0, 15)}`,
        )
        .pexpire(list, BATCH_WINDOW_MS + this.opts.retentionMs)
        .exec()
        .then(throwFirst),
    );

    // Open from the start: a replica that dies while checking leaves it to the sweep.
    await storing(redis.zadd(keys.openBatches, expiresAt, id));

    // Pass 1: every line checked, nothing enqueued; a file with any bad line is refused whole.
    const check = new BatchInputCheck({
      endpoint: req.endpoint,
      maxRequests: this.opts.maxRequests,
      maxLineBytes: this.opts.maxLineBytes,
    });
    try {
      for await (const { text } of this.opts.store.lines(file)) check.add(text);
    } catch (err) {
      // The file went (deleted, expired) or Redis failed midway: the batch fails, nothing queued.
      const gone = err instanceof FileGoneError;
      await this.fail(id, [
        {
          code: gone ? 'invalid_request' : 'internal_error',
          message: gone
            ? `input_file_id: the file ${file.id} was deleted while it was being read`
            : `the input file could not be read: ${(err as Error).message}`,
          param: gone ? 'input_file_id' : null,
          line: null,
        },
      ]).catch(() => {});
      await redis.zrem(keys.openBatches, id).catch(() => {});
      if (gone) return this.retrieve(id, userId);
      throw err;
    }
    const summary = check.result();
    const errors: BatchError[] = [...summary.errors];
    if (errors.length === 0) {
      const { known } = await storing(this.opts.models.snapshot());
      for (const model of summary.models) {
        if (!known.has(model)) {
          errors.push({
            code: 'model_not_found',
            message: `The model '${model.slice(0, 256)}' does not exist: no worker serves it.`,
            param: 'body.model',
            line: null,
          });
          continue;
        }
        try {
          refuseIfNotAllowed(model, principal.grant);
        } catch (err) {
          errors.push({
            code: 'invalid_request',
            message: (err as Error).message,
            param: 'body.model',
            line: null,
          });
        }
      }
    }
    if (errors.length > 0) {
      await this.fail(id, errors);
      await redis.zrem(keys.openBatches, id).catch(() => {});
      return this.retrieve(id, userId);
    }

    // Pass 2: in_progress first (a worker skips a request whose batch is not), then the ids and
    // the jobs, chunk by chunk.
    // Only from validating: a cancel that came meanwhile wins (nothing is queued yet).
    const started = await storing(
      redis.eval(
        "if redis.call('HGET', KEYS[1], 'status') ~= 'validating' then return 0 end redis.call('HSET', KEYS[1], 'status', 'in_progress', 'in_progress_at', ARGV[1], 'total', ARGV[2]) return 1",
        1,
        key,
        String(this.now()),
        String(summary.requests),
      ),
    );
    if (started !== 1) {
      // Cancelled while validating: its counts are all 0 of a total of 0, and the sweep ends it.
      return this.retrieve(id, userId);
    }
    this.opts.onStatus?.('in_progress');
    try {
      await this.enqueue(id, principal, file, req.endpoint, createdAt, expiresAt);
    } catch (err) {
      // Whatever was enqueued is skipped by the workers (the batch is no longer in_progress).
      this.opts.log.warn({ batch_id: id, err: (err as Error).message }, 'batch_enqueue_failed');
      await this.fail(id, [
        {
          code: 'internal_error',
          message: `the batch could not be queued: ${(err as Error).message}`,
          param: null,
          line: null,
        },
      ]).catch(() => {});
      await redis.zrem(keys.openBatches, id).catch(() => {});
      throw new ApiError('service_unavailable', 'the batch could not be queued; retry shortly', {
        headers: { 'Retry-After': '1' },
      });
    }
    this.opts.log.info({ batch_id: id, requests: summary.requests, models: summary.models }, 'batch_created');
    return this.retrieve(id, userId);
  }

  private async enqueue(
    id: string,
    principal: Principal,
    file: StoredFile,
    endpoint: BatchRequest['url'],
    createdAt: number,
    expiresAt: number,
  ): Promise<void> {
    const { redis, keys, dispatcher } = this.opts;
    const idsKey = keys.batchIds(id);
    let index = 0;
    let ids: string[] = [];
    let jobs: ChatJob[] = [];
    const flush = async () => {
      if (ids.length === 0) return;
      await redis
        .multi()
        .rpush(idsKey, ...ids)
        .pexpireat(idsKey, expiresAt + this.opts.retentionMs)
        .exec()
        .then(throwFirst);
      const byModel = new Map<string, ChatJob[]>();
      for (const j of jobs) {
        const some = byModel.get(j.model);
        if (some) some.push(j);
        else byModel.set(j.model, [j]);
      }
      for (const [model, some] of byModel) {
        await enqueueBatchJobs(dispatcher.batchQueue(model), some, dispatcher.attempts);
      }
      ids = [];
      jobs = [];
    };
    for await (const { line, text } of this.opts.store.lines(file)) {
      if (text.trim() === '') continue;
      const parsed = parseBatchLine(text, line, { endpoint });
      if ('error' in parsed) throw new Error(`line ${line} changed since it was checked`);
      const job = this.jobOf(id, index++, parsed.request, principal, createdAt, expiresAt);
      ids.push(JSON.stringify([parsed.request.custom_id, job.model]));
      jobs.push(job);
      if (ids.length >= CREATE_CHUNK) await flush();
    }
    await flush();
  }

  /** One request as a ChatJob: the route's own mapping (chatInput, completionInput). */
  private jobOf(
    id: string,
    index: number,
    req: BatchRequest,
    principal: Principal,
    createdAt: number,
    expiresAt: number,
  ): ChatJob {
    const input = req.url === '/v1/chat/completions' ? chatInput(req.body) : completionInput(req.body);
    const jobId = batchJobId(id, index);
    return {
      v: JOB_VERSION,
      kind: input.kind ?? 'chat',
      // Nobody follows a batch request: its answer goes into the batch's results.
      replyTo: `${this.opts.keys.batch(id)}:ch`,
      graceMs: -1,
      requestId: jobId,
      model: input.model ?? this.opts.defaultModel,
      messages: input.messages,
      ...(input.prompt !== undefined && { prompt: input.prompt }),
      params: input.params,
      userId: principal.userId,
      tier: principal.tier,
      ...(principal.keyId !== undefined && { keyId: principal.keyId }),
      enqueuedAt: createdAt,
      deadline: expiresAt,
      batch: { id, index, customId: req.custom_id },
    };
  }

  private async fail(id: string, errors: BatchError[]): Promise<void> {
    await storing(
      this.opts.redis.hset(this.opts.keys.batch(id), {
        status: 'failed',
        failed_at: this.now(),
        errors: JSON.stringify(errors),
      }),
    );
    this.opts.onStatus?.('failed');
  }

  private async inputFile(fileId: string, userId: string): Promise<StoredFile> {
    const file = await storing(this.opts.store.get(fileId));
    if (!file || file.userId !== userId) {
      throw new ApiError('not_found', `No such File object: ${fileId.slice(0, 64)}`, {
        param: 'input_file_id',
      });
    }
    if (file.purpose !== 'batch') {
      throw new ApiError(
        'invalid_request',
        `input_file_id: the file's purpose is '${file.purpose}', not 'batch'`,
        {
          param: 'input_file_id',
        },
      );
    }
    return file;
  }

  /** The user's batch's hash, or 404 (another user's too). */
  async hash(id: string, userId: string): Promise<BatchHash> {
    const h = BATCH_ID_PATTERN.test(id)
      ? await storing(this.opts.redis.hgetall(this.opts.keys.batch(id)))
      : {};
    if (h.user === undefined || h.user !== userId) {
      throw new ApiError('not_found', `No batch found with id '${id.slice(0, 64)}'`, { param: 'batch_id' });
    }
    return h;
  }

  async retrieve(id: string, userId: string): Promise<BatchObject> {
    return batchObject(id, await this.hash(id, userId));
  }

  /**
   * `cancelling` at once: workers skip every request of the batch that has not started (they
   * read its status before each), the running ones finish. The sweep makes it `cancelled`, with
   * the output of what completed, once every request has ended.
   */
  async cancel(id: string, userId: string): Promise<BatchObject> {
    const h = await this.hash(id, userId);
    const status = h.status as BatchStatus;
    if (status === 'cancelling' || status === 'cancelled') return batchObject(id, h);
    if (status !== 'in_progress' && status !== 'validating') {
      throw new ApiError('conflict', `Cannot cancel a batch with status '${status}'.`);
    }
    // Only from in_progress/validating (a concurrent finalize may have moved it on).
    const moved = await storing(
      this.opts.redis.eval(
        "local s = redis.call('HGET', KEYS[1], 'status') if s == 'in_progress' or s == 'validating' then redis.call('HSET', KEYS[1], 'status', 'cancelling', 'cancelling_at', ARGV[1]) return 1 end return 0",
        1,
        this.opts.keys.batch(id),
        String(this.now()),
      ),
    );
    if (moved === 1) {
      this.opts.onStatus?.('cancelling');
      this.opts.log.info({ batch_id: id }, 'batch_cancelling');
      // In the background: the answer is `cancelling` now; the sweep sees the counts reach total.
      const { redis, keys, dispatcher, log } = this.opts;
      dropWaiting(redis, keys, (m) => dispatcher.batchQueue(m), id, Number(h.total ?? 0), 'cancelled').then(
        (n) => log.info({ batch_id: id, dropped: n }, 'batch_waiting_dropped'),
        (err: Error) => log.warn({ batch_id: id, err: err.message }, 'batch_drop_failed'),
      );
    }
    return this.retrieve(id, userId);
  }

  /** `GET /v1/batches`: newest first, after the cursor. */
  async list(userId: string, query: Record<string, string>): Promise<BatchList> {
    const parsed = BatchListQuery.safeParse(query);
    if (!parsed.success) {
      const { param, message } = firstIssue(parsed.error);
      throw new ApiError('invalid_request', message, param === undefined ? {} : { param });
    }
    const { limit, after } = parsed.data;
    const { redis, keys } = this.opts;
    const key = keys.userBatches(userId);
    const found: BatchObject[] = [];
    let cursor = after;
    const page = Math.min(limit + 1, 200);
    for (;;) {
      const ids = await storing(
        redis.zrevrangebylex(key, cursor ? `(${cursor}` : '+', '-', 'LIMIT', 0, page),
      );
      const hashes = await Promise.all(ids.map((id) => storing(redis.hgetall(keys.batch(id)))));
      const gone = ids.filter((_, i) => hashes[i]?.user === undefined);
      if (gone.length > 0) await redis.zrem(key, ...gone);
      ids.forEach((id, i) => {
        const h = hashes[i];
        if (h?.user === userId) found.push(batchObject(id, h));
      });
      if (found.length > limit || ids.length < page) break;
      cursor = ids.at(-1);
    }
    const data = found.slice(0, limit);
    return {
      object: 'list',
      data,
      has_more: found.length > limit,
      first_id: data[0]?.id ?? null,
      last_id: data.at(-1)?.id ?? null,
    };
  }
}

const seconds = (ms: string | undefined): number | null =>
  ms === undefined || ms === '' ? null : Math.floor(Number(ms) / 1000);

/** The hash → OpenAI's Batch object. */
export function batchObject(id: string, h: BatchHash): BatchObject {
  const errors = h.errors ? (JSON.parse(h.errors) as BatchError[]) : [];
  return {
    id,
    object: 'batch',
    endpoint: h.endpoint ?? '',
    errors: errors.length > 0 ? { object: 'list', data: errors } : null,
    input_file_id: h.input_file_id ?? '',
    completion_window: h.completion_window ?? '24h',
    status: (h.status ?? 'validating') as BatchStatus,
    output_file_id: h.output_file_id || null,
    error_file_id: h.error_file_id || null,
    created_at: seconds(h.created_at) ?? 0,
    in_progress_at: seconds(h.in_progress_at),
    expires_at: seconds(h.expires_at),
    finalizing_at: seconds(h.finalizing_at),
    completed_at: seconds(h.completed_at),
    failed_at: seconds(h.failed_at),
    expired_at: seconds(h.expired_at),
    cancelling_at: seconds(h.cancelling_at),
    cancelled_at: seconds(h.cancelled_at),
    request_counts: {
      total: Number(h.total ?? 0),
      completed: Number(h.completed ?? 0),
      failed: Number(h.failed ?? 0),
    },
    metadata: h.metadata ? (JSON.parse(h.metadata) as Record<string, string> | null) : null,
  };
}

/** Redis failing under a batch operation is the gateway's 503, like any request path's. */
export async function storing<T>(op: Promise<T>): Promise<T> {
  try {
    return await op;
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw new ApiError(
      'service_unavailable',
      `batch storage is unavailable (${(err as Error).message}); retry shortly`,
      {
        headers: { 'Retry-After': '1' },
      },
    );
  }
}
