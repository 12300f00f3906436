import type { RedisTarget } from '@llmgw/config';
import { type Logger, runShutdown } from '@llmgw/observability';
import { type BreakerState, ControlMessage, WorkerInfo } from '@llmgw/protocol';
import {
  createKeys,
  createRedis,
  type Keys,
  queueTelemetry,
  quitQuietly,
  RunningPlaces,
  waitReady,
} from '@llmgw/redis';
import { Queue, type Telemetry, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Backend } from './backends/backend.ts';
import { createBackend } from './backends/index.ts';
import { BatchLane, batchSlotsOf } from './batch-lane.ts';
import { CircuitBreaker } from './breaker.ts';
import { Cancellations } from './cancellations.ts';
import type { WorkerEnv } from './env.ts';
import { Heartbeat } from './heartbeat.ts';
import { WorkerMetrics } from './metrics.ts';
import { type MetricsServer, startMetricsServer } from './metrics-server.ts';
import { createProcessor } from './processor.ts';

export interface WorkerServiceOptions {
  /** Tracing on: BullMQ's job span, continuing the trace of the request that enqueued it. */
  telemetry?: Telemetry | undefined;
  /** REDIS_URL, or the target of the Redis settings (a single primary or Sentinel). */
  redis: string | RedisTarget;
  keys: Keys;
  models: string[];
  concurrency: number;
  /** BullMQ Workers per model (WORKER_FETCHERS, at most `concurrency`): see {@link splitSlots}. */
  fetchers: number;
  backend: Backend;
  log: Logger;
  instanceId: string;
  heartbeatMs: number;
  /** Registration TTL: a worker that stops refreshing disappears from /v1/models after this. */
  registrationTtlMs: number;
  /** Backend health endpoint probed with every heartbeat (undefined: not probed). */
  healthUrl: string | undefined;
  /** 0 = no global cap. */
  modelMaxConcurrency: number;
  lockMs: number;
  /** /metrics + /health server; undefined: none (0: any free port). */
  metricsPort?: number;
  metricsHost: string;
  logPrompts: boolean;
  breakerFailures: number;
  breakerCooldownMs: number;
  breakerMaxCooldownMs: number;
  firstTokenTimeoutMs: number;
  backendPriority: boolean;
  /** USAGE_RETENTION_DAYS. */
  usageRetentionDays: number;
  /** BATCH_MAX_SLOTS_FRACTION: the share of each model's slots batch requests may use (0: none). */
  batchSlotsFraction?: number;
}

/** Service options from the parsed environment (main.ts and tests build them the same way). */
export function workerOptionsFromEnv(
  env: WorkerEnv,
  log: Logger,
  instanceId: string,
  backend: Backend = createBackend(env),
): WorkerServiceOptions {
  return {
    redis: env.redis,
    keys: createKeys(env.KEY_PREFIX, { cluster: env.redis.mode === 'cluster' }),
    models: env.WORKER_MODELS,
    concurrency: env.WORKER_CONCURRENCY,
    fetchers: env.WORKER_FETCHERS,
    backend,
    log,
    instanceId,
    heartbeatMs: env.HEARTBEAT_MS,
    registrationTtlMs: env.WORKER_TTL_MS,
    healthUrl: env.LLM_HEALTH_URL,
    modelMaxConcurrency: env.MODEL_MAX_CONCURRENCY,
    lockMs: env.JOB_LOCK_MS,
    metricsPort: env.METRICS_PORT,
    metricsHost: env.METRICS_HOST,
    logPrompts: env.LOG_PROMPTS,
    breakerFailures: env.BREAKER_FAILURES,
    breakerCooldownMs: env.BREAKER_COOLDOWN_MS,
    breakerMaxCooldownMs: env.BREAKER_MAX_COOLDOWN_MS,
    firstTokenTimeoutMs: env.LLM_FIRST_TOKEN_TIMEOUT_MS,
    backendPriority: env.BACKEND_PRIORITY,
    usageRetentionDays: env.USAGE_RETENTION_DAYS,
    batchSlotsFraction: env.BATCH_MAX_SLOTS_FRACTION,
    telemetry: queueTelemetry(env.tracing),
  };
}

/**
 * One worker process: a BullMQ Worker per served model (each model has its own queue, so this
 * process only ever takes jobs for models its backend serves), a publisher connection, and a
 * subscriber on the control channel for cancellations.
 */
export class WorkerService {
  private readonly workers: Worker[] = [];
  /** The BullMQ Workers and the circuit breaker of each served model. */
  private readonly workersOf = new Map<string, Worker[]>();
  /** Each model's batch lane (idle slots only), when BATCH_MAX_SLOTS_FRACTION gives it any. */
  private readonly lanes = new Map<string, BatchLane>();
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly cancellations = new Cancellations();
  private closing: Promise<void> | undefined;
  private readonly startedAt = Date.now();
  private heartbeat: Heartbeat | undefined;
  private places: RunningPlaces | undefined;
  /** Registered: the api routes jobs here (the /health of the metrics server says so). */
  private registered = false;

  private constructor(
    private readonly opts: WorkerServiceOptions,
    readonly metrics: WorkerMetrics,
    private readonly metricsServer: MetricsServer | undefined,
    private readonly bullConnection: Redis,
    private readonly publisher: Redis,
    private readonly commands: Redis,
    private readonly control: Redis,
  ) {
    for (const model of opts.models) this.breakers.set(model, this.createBreaker(model));
  }

  /**
   * Open: this process stops fetching the model's jobs (running ones go on; others keep the
   * queue), its slots drop out of the model's capacity, and the registration says why.
   */
  private createBreaker(model: string): CircuitBreaker {
    const { opts } = this;
    return new CircuitBreaker({
      failures: opts.breakerFailures,
      cooldownMs: opts.breakerCooldownMs,
      maxCooldownMs: opts.breakerMaxCooldownMs,
      onOpen: (reason) => {
        opts.log.warn({ model, reason }, 'breaker_open');
        this.metrics.breakerOpen.set({ model }, 1);
        this.metrics.slots.set({ model }, 0);
        for (const w of this.workersOf.get(model) ?? []) void w.pause(true);
        this.heartbeat?.refresh();
      },
      onClose: () => {
        opts.log.info({ model }, 'breaker_closed');
        this.metrics.breakerOpen.set({ model }, 0);
        this.metrics.slots.set({ model }, opts.concurrency);
        for (const w of this.workersOf.get(model) ?? []) w.resume();
        this.heartbeat?.refresh();
      },
      probe: async () => {
        await opts.backend.generate(
          { kind: 'chat', model, messages: [{ role: 'user', content: 'ping' }], params: { max_tokens: 1 } },
          {
            signal: AbortSignal.timeout(Math.min(30_000, opts.firstTokenTimeoutMs)),
            onDelta: () => {},
            onDropped: () => {},
          },
        );
      },
    });
  }

  /** Breakers that are not closed, for the registration and /health. */
  private openBreakers(): Record<string, BreakerState> | undefined {
    const open = [...this.breakers].filter(([, b]) => b.state !== undefined);
    return open.length === 0 ? undefined : Object.fromEntries(open.map(([model, b]) => [model, b.state!]));
  }

  /** Whether another live worker with a closed breaker for `model` is registered. */
  private async otherWorkerServes(model: string): Promise<boolean> {
    const { keys, instanceId } = this.opts;
    const ids = (await this.commands.smembers(keys.modelWorkers(model))).filter((id) => id !== instanceId);
    if (ids.length === 0) return false;
    const raw = await this.commands.mget(...ids.map((id) => keys.worker(id)));
    return raw.some((value) => {
      if (value === null) return false;
      const info = WorkerInfo.safeParse(JSON.parse(value));
      return info.success && !info.data.breakers?.[model];
    });
  }

  /** Port of the /metrics + /health server (undefined when METRICS_PORT is off). */
  get metricsPort(): number | undefined {
    return this.metricsServer?.port;
  }

  static async start(opts: WorkerServiceOptions): Promise<WorkerService> {
    const metrics = new WorkerMetrics(opts.models, opts.concurrency);
    let service: WorkerService | undefined;
    // First: a taken METRICS_PORT fails the start before this worker registers (and before a
    // script waiting for it calls the stack ready). /health answers 503 until registered.
    const metricsServer =
      opts.metricsPort === undefined
        ? undefined
        : await startMetricsServer(opts.metricsPort, opts.metricsHost, metrics.registry, () =>
            service ? service.health() : { ok: false, detail: { registered: false } },
          );
    if (metricsServer) opts.log.info({ port: metricsServer.port }, 'metrics_listening');
    const name = opts.instanceId;
    const bull = createRedis(opts.redis, 'worker', `${name}:bull`);
    const publisher = createRedis(opts.redis, 'publisher', `${name}:pub`);
    const commands = createRedis(opts.redis, 'command', `${name}:cmd`);
    const control = createRedis(opts.redis, 'subscriber', `${name}:control`);
    for (const c of [bull, publisher, commands, control])
      c.on('error', (err) => opts.log.debug({ err: err.message }, 'redis_error'));
    try {
      await Promise.all([waitReady(bull), waitReady(publisher), waitReady(commands), waitReady(control)]);
    } catch (err) {
      for (const c of [bull, publisher, commands, control]) c.disconnect();
      await metricsServer?.close();
      throw err;
    }
    service = new WorkerService(opts, metrics, metricsServer, bull, publisher, commands, control);
    await service.listenForCancels();
    if (opts.modelMaxConcurrency > 0) await service.capGlobalConcurrency();
    service.startWorkers();
    await service.register();
    service.registered = true;
    // Only now: registered, so the api routes this worker's models (tests and scripts wait for this line).
    opts.log.info({ models: opts.models, concurrency: opts.concurrency }, 'worker_started');
    return service;
  }

  /** Liveness: registered, running (not shutting down) and connected to Redis. */
  private health(): { ok: boolean; detail: Record<string, unknown> } {
    const redis = this.bullConnection.status;
    const backend = this.heartbeat?.backend;
    return {
      ok: this.registered && this.closing === undefined && redis === 'ready',
      detail: {
        registered: this.registered,
        redis,
        closing: this.closing !== undefined,
        busy: this.metrics.running,
        backend,
        breakers: this.openBreakers() ?? {},
      },
    };
  }

  private async register(): Promise<void> {
    const { opts } = this;
    this.heartbeat = new Heartbeat({
      redis: this.commands,
      keys: opts.keys,
      log: opts.log,
      ttlMs: opts.registrationTtlMs,
      healthUrl: opts.healthUrl,
      // `unknown` (no health endpoint, e.g. a hosted API) is not "down": leave the gauge unset.
      onProbe: (h) => {
        if (h.status !== 'unknown') this.metrics.backendUp.set(h.status === 'ok' ? 1 : 0);
        // A backend that cannot even answer its health endpoint takes no jobs until a real
        // completion succeeds again (the half-open probe).
        if (h.status === 'error')
          for (const b of this.breakers.values()) b.trip(`health probe: ${h.detail ?? 'error'}`);
      },
      info: () => ({
        instanceId: opts.instanceId,
        models: opts.models,
        concurrency: opts.concurrency,
        provider: opts.backend.provider,
        busy: this.metrics.running,
        startedAt: this.startedAt,
        breakers: this.openBreakers(),
      }),
    });
    await this.heartbeat.start();
  }

  /** MODEL_MAX_CONCURRENCY: a hard cap per model, held in Redis, across every worker. */
  private async capGlobalConcurrency(): Promise<void> {
    const { opts } = this;
    for (const model of opts.models) {
      const queue = new Queue(opts.keys.queueName(model), {
        connection: this.bullConnection,
        prefix: opts.keys.bullPrefix,
      });
      try {
        await queue.setGlobalConcurrency(opts.modelMaxConcurrency);
      } finally {
        await queue.close();
      }
    }
  }

  private startWorkers(): void {
    const { opts } = this;
    this.places = new RunningPlaces({
      redis: this.commands,
      keys: opts.keys,
      onError: (op, err) => opts.log.warn({ op, err: err.message }, 'user_place_failed'),
    });
    const process = createProcessor({
      backend: opts.backend,
      redis: this.commands,
      publisher: this.publisher,
      log: opts.log,
      instanceId: opts.instanceId,
      heartbeatMs: opts.heartbeatMs,
      keys: opts.keys,
      isCancelled: (id) => this.cancellations.has(id),
      breaker: (model) => this.breakers.get(model)!,
      otherWorkerServes: (model) => this.otherWorkerServes(model),
      firstTokenTimeoutMs: opts.firstTokenTimeoutMs,
      backendPriority: opts.backendPriority,
      metrics: this.metrics,
      logPrompts: opts.logPrompts,
      places: this.places,
      replicated: typeof opts.redis !== 'string' && opts.redis.mode !== 'single',
      usageRetentionDays: opts.usageRetentionDays,
      interactiveWaiting: async (model) => (await this.lanes.get(model)?.interactiveWaiting()) ?? 0,
    });
    const batchSlots = batchSlotsOf(opts.concurrency, opts.batchSlotsFraction ?? 0.5);
    for (const model of opts.models) {
      const workers = splitSlots(opts.concurrency, opts.fetchers).map((concurrency) => {
        const worker = new Worker(opts.keys.queueName(model), process, {
          connection: this.bullConnection,
          prefix: opts.keys.bullPrefix,
          concurrency,
          name: opts.instanceId,
          lockDuration: opts.lockMs,
          stalledInterval: Math.max(1000, Math.floor(opts.lockMs / 2)),
          // A job re-run after its worker died may stream again only if no text reached the client
          // (the api decides by the attempt number); once is enough.
          maxStalledCount: 1,
          ...(opts.telemetry && { telemetry: opts.telemetry }),
        });
        worker.on('error', (err) => opts.log.error({ err: err.message, model }, 'worker_error'));
        this.workers.push(worker);
        return worker;
      });
      this.workersOf.set(model, workers);
      if (batchSlots > 0) {
        const lane = new BatchLane({
          model,
          keys: opts.keys,
          connection: this.bullConnection,
          slots: batchSlots,
          process,
          name: opts.instanceId,
          lockMs: opts.lockMs,
          log: opts.log,
          metrics: this.metrics,
          // An open breaker holds the batch lane too: no backend to send it to.
          heldBack: () => this.breakers.get(model)?.isClosed === false,
        });
        this.lanes.set(model, lane);
        // Cancel messages and the shutdown's drain reach its requests like any other job's.
        this.workers.push(lane.worker);
      }
    }
  }

  private async listenForCancels(): Promise<void> {
    const channel = this.opts.keys.controlChannel;
    this.control.on('message', (ch: string, raw: string) => {
      if (ch !== channel) return;
      let msg: ControlMessage;
      try {
        msg = ControlMessage.parse(JSON.parse(raw));
      } catch {
        return;
      }
      this.cancellations.add(msg.id);
      for (const w of this.workers) {
        if (w.cancelJob(msg.id, msg.reason))
          this.opts.log.info({ job_id: msg.id, reason: msg.reason }, 'job_cancel');
      }
    });
    await this.control.subscribe(channel);
  }

  /**
   * Stops taking jobs, lets active ones finish for `graceMs`, then aborts the rest (their clients
   * get a `worker_shutdown` error event). The steps, in order, each in its own try/catch
   * (runShutdown): a step that fails is logged and the next still runs.
   * Idempotent: a second call returns the first promise.
   */
  close(graceMs = 30_000): Promise<void> {
    this.closing ??= (async () => {
      const { log } = this.opts;
      await runShutdown(log, [
        // Deregister first: the api stops routing here while the running jobs finish.
        {
          name: 'stop_breaker_probes',
          run: () => {
            for (const b of this.breakers.values()) b.stop();
          },
        },
        { name: 'deregister', run: () => this.heartbeat?.stop() },
        {
          name: 'stop_batch_lanes',
          run: () => Promise.all([...this.lanes.values()].map((l) => l.stopGate())),
        },
        { name: 'drain_jobs', run: () => this.drainJobs(graceMs) },
        { name: 'close_batch_lanes', run: () => Promise.all([...this.lanes.values()].map((l) => l.close())) },
        { name: 'stop_place_renewal', run: () => this.places?.stop() },
        { name: 'close_control_subscriber', run: () => quitQuietly(this.control) },
        { name: 'close_publisher', run: () => quitQuietly(this.publisher) },
        { name: 'close_commands', run: () => quitQuietly(this.commands) },
        { name: 'close_queue_connection', run: () => quitQuietly(this.bullConnection) },
        { name: 'close_metrics_server', run: () => this.metricsServer?.close() },
      ]);
      log.info('worker_stopped');
    })();
    return this.closing;
  }

  /**
   * Awaits every BullMQ worker's close (it resolves once its active jobs are done); jobs still
   * running after `graceMs` are cancelled, which ends them with `worker_shutdown`.
   */
  private async drainJobs(graceMs: number): Promise<void> {
    const closes = this.workers.map((w) => w.close());
    const timer = setTimeout(() => {
      this.opts.log.warn('shutdown_grace_expired_cancelling_jobs');
      for (const w of this.workers) w.cancelAllJobs('shutdown');
    }, graceMs);
    try {
      await Promise.allSettled(closes);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * A model's slots over its BullMQ Workers: `fetchers` of them (at most one per slot), the slots
 * shared out as evenly as they go. A BullMQ Worker fetches its jobs in sequence, one round trip
 * each; several fetch side by side, so a burst reaches the backend in a fraction of the time.
 * Together they take exactly `concurrency` jobs at once, as one Worker would.
 */
export function splitSlots(concurrency: number, fetchers: number): number[] {
  const n = Math.max(1, Math.min(fetchers, concurrency));
  return Array.from({ length: n }, (_, i) => Math.floor(concurrency / n) + (i < concurrency % n ? 1 : 0));
}
