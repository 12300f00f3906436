import type { Logger } from '@llmgw/observability';
import type { BackendHealth, WorkerInfo } from '@llmgw/protocol';
import type { Keys } from '@llmgw/redis';
import type { Redis } from 'ioredis';
import { probeBackend } from './backend-probe.ts';

export interface HeartbeatOptions {
  redis: Redis;
  keys: Keys;
  log: Logger;
  ttlMs: number;
  healthUrl: string | undefined;
  onProbe?: (health: BackendHealth) => void;
  info: () => Omit<WorkerInfo, 'backend' | 'heartbeatAt'>;
}

/**
 * Registers this worker and the models it serves, and keeps the registration alive: every
 * ttl/3 it probes the backend and rewrites its key with a fresh TTL. A worker that dies simply
 * stops refreshing, and its key expires within the TTL; a clean stop removes it at once.
 */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private last: BackendHealth = { status: 'unknown', checkedAt: 0 };
  private beating: Promise<void> | undefined;

  constructor(private readonly opts: HeartbeatOptions) {}

  get backend(): BackendHealth {
    return this.last;
  }

  async start(): Promise<void> {
    this.last = await probeBackend(this.opts.healthUrl);
    this.opts.onProbe?.(this.last);
    await this.beat();
    this.timer = setInterval(
      () => {
        this.beating ??= this.beat().finally(() => {
          this.beating = undefined;
        });
      },
      Math.max(100, Math.floor(this.opts.ttlMs / 3)),
    );
    this.timer.unref();
  }

  /** Rewrites the registration now (a breaker changed the capacity: the api should know at once). */
  refresh(): void {
    this.beating ??= this.beat(false).finally(() => {
      this.beating = undefined;
    });
  }

  private async beat(probe = true): Promise<void> {
    const { redis, keys, ttlMs } = this.opts;
    const info: WorkerInfo = { ...this.opts.info(), backend: this.last, heartbeatAt: Date.now() };
    const tx = redis.multi().set(keys.worker(info.instanceId), JSON.stringify(info), 'PX', ttlMs);
    for (const model of info.models)
      tx.sadd(keys.models, model)
        .zadd(keys.modelsSeen, info.heartbeatAt, model)
        .sadd(keys.modelWorkers(model), info.instanceId);
    try {
      await tx.exec();
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'heartbeat_failed');
    }
    if (!probe) return;
    // Probe after the registration is refreshed, so a slow backend never lets the key lapse;
    // the next heartbeat carries the result.
    this.last = await probeBackend(this.opts.healthUrl);
    this.opts.onProbe?.(this.last);
  }

  /** Deregisters at once (clean shutdown). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.beating;
    const { redis, keys } = this.opts;
    const info = this.opts.info();
    const tx = redis.multi().del(keys.worker(info.instanceId));
    for (const model of info.models) tx.srem(keys.modelWorkers(model), info.instanceId);
    try {
      await tx.exec();
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'deregister_failed');
    }
  }
}
