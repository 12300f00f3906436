import { WorkerInfo } from '@llmgw/protocol';
import { type Keys, withScripts } from '@llmgw/redis';
import type { Redis } from 'ioredis';
import { clip } from '../clip.ts';
import { ApiError } from '../errors/index.ts';

export interface RegistryOptions {
  /** MODELS: served even before a worker registered them. */
  declared?: string[];
  /** SCALE_TO_ZERO: a known model without a live worker is queued, not refused. */
  scaleToZero?: boolean;
  /**
   * MODEL_FORGET_AFTER_MS: a registered model no worker served for this long is dropped from
   * P:models (0: never), so /health stops reporting it degraded. MODELS are never dropped.
   */
  forgetAfterMs?: number;
}

export interface RegistrySnapshot {
  /** Live workers by model (models with none are absent). */
  live: Map<string, WorkerInfo[]>;
  /** Every model a worker registered (and not forgotten since), and every declared one. */
  known: Set<string>;
  workers: WorkerInfo[];
  takenAt: number;
}

/**
 * The api's read side of worker registration (see apps/worker/src/heartbeat.ts): which models
 * have a live worker. Read at most once per `cacheMs` per process — it sits on the request path
 * and answers the same for every request in that window.
 */
export class ModelRegistry {
  private cached: RegistrySnapshot | undefined;
  private refreshing: Promise<RegistrySnapshot> | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly cacheMs = 1000,
    private readonly opts: RegistryOptions = {},
  ) {}

  async snapshot(): Promise<RegistrySnapshot> {
    if (this.cached && Date.now() - this.cached.takenAt < this.cacheMs) return this.cached;
    this.refreshing ??= this.read().finally(() => {
      this.refreshing = undefined;
    });
    this.cached = await this.refreshing;
    return this.cached;
  }

  /**
   * Whether `model` is known (a worker registered it, or MODELS declares it) by the last snapshot
   * read, without reading Redis: for metric labels, set on every observation.
   */
  isKnown(model: string): boolean {
    return this.cached?.known.has(model) ?? false;
  }

  /**
   * Throws 404 `model_not_found` or 503 `model_unavailable` unless a live worker serves `model`.
   * With SCALE_TO_ZERO, a known model with no live worker is admitted: its job waits for one.
   * Live workers whose breakers are all open still admit: the job waits for one to recover.
   */
  async require(model: string): Promise<void> {
    const snap = await this.snapshot();
    if (snap.live.has(model)) return;
    if (snap.known.has(model) && this.opts.scaleToZero) return;
    if (snap.known.has(model)) {
      throw new ApiError(
        'model_unavailable',
        `no worker serving model '${clip(model)}' is alive right now; retry shortly`,
        {
          param: 'model',
          headers: { 'Retry-After': '5' },
        },
      );
    }
    throw new ApiError('model_not_found', `The model '${clip(model)}' does not exist`, { param: 'model' });
  }

  /** No live worker of `model` takes jobs: none alive, or every one's breaker for it is open. */
  async noWorkingBackend(model: string): Promise<boolean> {
    const workers = (await this.snapshot()).live.get(model) ?? [];
    return workers.every((w) => w.breakers !== undefined && Object.hasOwn(w.breakers, model));
  }

  private async read(): Promise<RegistrySnapshot> {
    const { redis, keys } = this;
    const forgetAfterMs = this.opts.forgetAfterMs ?? 0;
    const [models, seenFlat] = await Promise.all([
      redis.smembers(keys.models),
      forgetAfterMs > 0 ? redis.zrange(keys.modelsSeen, '0', '-1', 'WITHSCORES') : Promise.resolve([]),
    ]);
    const live = new Map<string, WorkerInfo[]>();
    const workers: WorkerInfo[] = [];
    if (models.length === 0) {
      return { live, known: new Set(this.opts.declared), workers, takenAt: Date.now() };
    }

    const memberLists = await Promise.all(models.map((m) => redis.smembers(keys.modelWorkers(m))));
    const ids = [...new Set(memberLists.flat())];
    const raw = ids.length > 0 ? await redis.mget(...ids.map((id) => keys.worker(id))) : [];
    const byId = new Map<string, WorkerInfo>();
    raw.forEach((value, i) => {
      if (value === null) return;
      const parsed = WorkerInfo.safeParse(JSON.parse(value));
      if (parsed.success) byId.set(ids[i]!, parsed.data);
    });
    workers.push(...byId.values());
    models.forEach((model, i) => {
      const members = memberLists[i] ?? [];
      const alive = members.flatMap((id) => byId.get(id) ?? []);
      if (alive.length > 0) live.set(model, alive);
      // Workers that died without deregistering: prune, best effort.
      const dead = members.filter((id) => !byId.has(id));
      if (dead.length > 0) redis.srem(keys.modelWorkers(model), ...dead).catch(() => {});
    });
    const forgotten = forgetAfterMs > 0 ? await this.forgetStale(models, live, seenFlat, forgetAfterMs) : [];
    const known = new Set([...models.filter((m) => !forgotten.includes(m)), ...(this.opts.declared ?? [])]);
    return { live, known, workers, takenAt: Date.now() };
  }

  /**
   * Drops the models without a live worker whose last heartbeat is older than `forgetAfterMs`
   * (and starts the clock of those without one); returns the dropped ones. Best effort: on a Redis
   * error the model stays known until the next read.
   */
  private async forgetStale(
    models: string[],
    live: Map<string, WorkerInfo[]>,
    seenFlat: string[],
    forgetAfterMs: number,
  ): Promise<string[]> {
    const { keys } = this;
    const seen = new Map<string, number>();
    for (let i = 0; i + 1 < seenFlat.length; i += 2) seen.set(seenFlat[i]!, Number(seenFlat[i + 1]));
    const now = Date.now();
    const candidates = models.filter((m) => {
      const at = seen.get(m);
      return !live.has(m) && (at === undefined || now - at >= forgetAfterMs);
    });
    const redis = withScripts(this.redis);
    const results = await Promise.all(
      candidates.map((m) =>
        redis
          .modelForget(keys.models, keys.modelsSeen, keys.modelWorkers(m), m, forgetAfterMs)
          .catch(() => 0),
      ),
    );
    return candidates.filter((_, i) => results[i] === 1);
  }
}
