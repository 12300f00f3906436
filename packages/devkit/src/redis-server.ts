import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { freePort } from './free-port.ts';

export interface RedisServerHandle {
  url: string;
  port: number;
  /** Process id of the running server (undefined once it exited). */
  readonly pid: number | undefined;
  /** SIGKILL, like a crash. */
  kill(): Promise<void>;
  /** Start again on the same port (after kill/stop). */
  restart(): Promise<void>;
  stop(): Promise<void>;
  /** SIGSTOP: the server hangs with its connections open (a stuck Redis, not a dead one). */
  pause(): void;
  /** SIGCONT after {@link pause}. */
  resume(): void;
}

export function redisServerAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** True when a Redis answers PING at `url` within `timeoutMs`. */
export function redisReachable(url: string, timeoutMs = 1000): Promise<boolean> {
  return askOnce(new Redis(url, oneShot(timeoutMs)), 'PING').then((r) => r === 'PONG');
}

/** A connection that tries once, never retries, and reports failure as `undefined` (askOnce). */
export const oneShot = (timeoutMs = 1000): RedisOptions => ({
  lazyConnect: true,
  connectTimeout: timeoutMs,
  maxRetriesPerRequest: 0,
  retryStrategy: () => null,
});

/** Connects `r` (made with {@link oneShot}), sends one command, disconnects: its reply, or undefined. */
export async function askOnce<T>(r: Redis, ...args: [string, ...string[]]): Promise<T | undefined> {
  r.on('error', () => {});
  try {
    await r.connect();
    return (await r.call(...args)) as T;
  } catch {
    return undefined;
  } finally {
    r.disconnect();
  }
}

/** How a test reaches a server of its own: over TLS trusting `ca` (a file), with a password. */
export interface NodeAccess {
  ca?: string;
  password?: string;
  timeoutMs?: number;
}

/** {@link askOnce} of the server on 127.0.0.1:`port`, reached as `access` says. */
export const askNode = <T>(
  access: NodeAccess,
  port: number,
  ...args: [string, ...string[]]
): Promise<T | undefined> =>
  askOnce<T>(
    new Redis({
      host: '127.0.0.1',
      port,
      ...(access.ca && { tls: { ca: readFileSync(access.ca) } }),
      ...(access.password && { password: access.password }),
      ...oneShot(access.timeoutMs),
    }),
    ...args,
  );

/** {@link askOnce} of the plain server on 127.0.0.1:`port` (PING, INFO, CLUSTER INFO, SENTINEL …). */
export const askPort = <T>(port: number, ...args: [string, ...string[]]): Promise<T | undefined> =>
  askNode<T>({}, port, ...args);

export interface RedisServerOptions {
  port?: number;
  /**
   * Keep the data across stop/kill and restart: an append-only file fsynced on every write, in a
   * temporary directory removed when this process exits. Default: no persistence.
   */
  persist?: boolean;
  /** Its own process group: a terminal's Ctrl-C does not reach it (see spawnService's `detached`). */
  detached?: boolean;
  /** More arguments (`--replicaof`, TLS settings, …), after the defaults. */
  args?: string[];
  /** TLS only, on this port (the plain port is closed): `url` is `rediss://`, checked with `ca`. */
  tls?: { port: number; ca: string };
  /** `requirepass` (and `masterauth`, for a replica): every client, the probes too, must AUTH. */
  password?: string;
}

/**
 * Spawns a private `redis-server` (`noeviction` as BullMQ requires) on a free port. Tests that
 * stop, pause or kill Redis use their own, never the shared one.
 */
export async function spawnRedisServer(opts: RedisServerOptions = {}): Promise<RedisServerHandle> {
  const port = opts.tls?.port ?? opts.port ?? (await freePort());
  const url = `${opts.tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`;
  const ready = async (timeoutMs: number) =>
    (await askNode({ ca: opts.tls?.ca, password: opts.password, timeoutMs }, port, 'PING')) === 'PONG';
  let child: ChildProcess | undefined;
  // A directory of its own even without persistence: a replica writes the RDB of its full sync
  // there, never into the working directory (the checkout).
  const persistence = opts.persist
    ? ['--dir', persistDir(), '--appendonly', 'yes', '--appendfsync', 'always']
    : ['--dir', persistDir(), '--appendonly', 'no'];

  const start = async () => {
    child = spawn(
      'redis-server',
      [
        '--port',
        opts.tls ? '0' : String(port),
        ...(opts.tls ? ['--tls-port', String(port)] : []),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        ...persistence,
        '--maxmemory-policy',
        'noeviction',
        ...(opts.password ? ['--requirepass', opts.password, '--masterauth', opts.password] : []),
        ...(opts.args ?? []),
      ],
      { stdio: 'ignore', detached: opts.detached ?? false },
    );
    child.unref();
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null)
        throw new Error(`redis-server exited with ${child.exitCode} on port ${port}`);
      if (await ready(200)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server on port ${port} did not answer within 10 s`);
  };
  const terminate = async (signal: NodeJS.Signals) => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      // Unref'd since its start: waiting for its exit must keep a process with nothing else to do
      // (the bench, between two scenarios) alive, or it ends before the server is gone.
      c.ref();
      c.kill(signal);
      // A paused (SIGSTOPped) server only acts on SIGTERM once continued.
      if (signal !== 'SIGKILL') c.kill('SIGCONT');
    });
  };

  const signal = (sig: NodeJS.Signals) => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill(sig);
  };

  await start();
  return {
    url,
    port,
    get pid() {
      return child && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
    },
    kill: () => terminate('SIGKILL'),
    stop: () => terminate('SIGTERM'),
    restart: start,
    pause: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
  };
}

/** Temporary directories to remove when this process exits (one exit listener for all of them). */
const scratchDirs = new Set<string>();

/** A new temporary directory `llmgw-<name>-…`, removed when this process exits. */
export function scratchDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `llmgw-${name}-`));
  if (scratchDirs.size === 0) {
    process.once('exit', () => {
      for (const d of scratchDirs) rmSync(d, { recursive: true, force: true });
    });
  }
  scratchDirs.add(dir);
  return dir;
}

const persistDir = () => scratchDir('redis');
