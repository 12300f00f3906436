/**
 * The stack's processes. Each child runs in a process group of its own, so the terminal's SIGINT
 * reaches only start.ts, which sends each one SIGTERM once, newest first (the api drains its
 * streams while the worker still serves them). Should start.ts die without doing so, even by
 * SIGKILL, a watchdog stops them (devkit guardProcessGroups).
 */
import {
  guardProcessGroups,
  type RedisServerHandle,
  type ServiceName,
  type SpawnedService,
  spawnRedisServer,
  spawnService,
} from '@llmgw/devkit';
import { print, say } from './log.ts';

export interface Stack {
  /** Starts `service`; should it exit on its own, the whole stack stops with exit 1. */
  launch(service: ServiceName, env: Record<string, string | undefined>): SpawnedService;
  /** A private redis-server, stopped last. */
  startRedis(): Promise<RedisServerHandle>;
  /** Stops every child, then exits with `code` (1 if a child failed to stop cleanly). Idempotent. */
  stop(code: number): Promise<never>;
  /** One line on stderr, then a stop with exit 1. */
  fail(msg: string): Promise<never>;
  /** SIGKILL to every group, exit 1: no waiting. */
  kill(): never;
  readonly stopping: boolean;
}

/** `graceMs`: the children's own grace on SIGTERM, which the watchdog waits for (and a little more). */
export function createStack(graceMs: number): Stack {
  const guard = guardProcessGroups(graceMs + 5000);
  /** Started children, oldest first; stopped newest first. */
  const children: SpawnedService[] = [];
  let redisServer: RedisServerHandle | undefined;
  let redisStarting: Promise<RedisServerHandle> | undefined;
  let stopping: Promise<never> | undefined;

  const stop = (code: number): Promise<never> => {
    stopping ??= (async () => {
      // The children and the watchdog's pipe are unref'd: without this, node would exit while a
      // child still stops, as soon as nothing else is pending.
      setInterval(() => {}, 1000);
      say(children.length > 0 ? 'stopping' : 'stopped');
      let failed = false;
      for (const child of [...children].reverse()) {
        const exit = await child.stop('SIGTERM');
        if (exit !== 0 && code === 0) {
          say(`${child.name} exited (${exit}) while stopping`);
          failed = true;
        }
      }
      const redis = await redisStarting?.catch(() => undefined);
      const pid = redis?.pid;
      await redis?.stop();
      if (pid !== undefined) guard.remove(pid);
      process.exit(failed ? 1 : code);
    })();
    return stopping;
  };

  return {
    get stopping() {
      return stopping !== undefined;
    },
    launch(service, env) {
      // A signal during startup: start nothing more (stop already took its list).
      if (stopping) throw new Error('stopping');
      const child = spawnService(service, env, { detached: true, onLine: (line) => print(service, line) });
      const pid = child.child.pid;
      if (pid !== undefined) guard.add(pid);
      children.push(child);
      void child.exited.then((code) => {
        if (pid !== undefined) guard.remove(pid);
        if (!stopping) {
          say(`${service} exited (${code}); stopping the stack`);
          void stop(1);
        }
      });
      return child;
    },
    async startRedis() {
      redisStarting = spawnRedisServer({ detached: true });
      redisServer = await redisStarting;
      if (redisServer.pid !== undefined) guard.add(redisServer.pid);
      return redisServer;
    },
    stop,
    fail(msg) {
      process.stderr.write(`pnpm start: ${msg}\n`);
      return stop(1);
    },
    kill() {
      for (const c of children) if (c.child.pid !== undefined) killGroup(c.child.pid);
      if (redisServer?.pid !== undefined) killGroup(redisServer.pid);
      process.exit(1);
    },
  };
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // Gone already.
  }
}
