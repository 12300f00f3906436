/**
 * `pnpm start`: the whole stack on this machine, one command.
 *  - Redis: REDIS_URL if it answers, else a private redis-server from the PATH on a free port.
 *  - The simulator on SIM_PORT (default 8001), unless LLM_BASE_URL points at a real backend.
 *  - One api (PORT, default 8000) and one worker (metrics on a free port unless METRICS_PORT),
 *    all bound to HOST (default 127.0.0.1), under KEY_PREFIX (default `llmgw-dev`).
 *  - The models: WORKER_MODELS, else what the backend's `GET /v1/models` lists.
 * Ready when every process answers its health endpoint (whatever LOG_LEVEL hides). Logs of every
 * process, prefixed by its name, readable rather than JSON.
 *
 * Ctrl-C stops all: the children run in process groups of their own, so the terminal's SIGINT
 * reaches only this script, which sends each one SIGTERM once, newest first (the api drains its
 * streams while the worker still serves them), and exits 0 once they have. Should this script
 * die without doing so, even by SIGKILL, a watchdog stops them (devkit guardProcessGroups).
 */
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { EnvError } from '@llmgw/config';
import {
  freePort,
  guardProcessGroups,
  REPO_ROOT,
  type RedisServerHandle,
  redisReachable,
  redisServerAvailable,
  type SpawnedService,
  spawnRedisServer,
  spawnService,
} from '@llmgw/devkit';
import { z } from 'zod';
import { parseStartEnv, type StartEnv } from './start-env.ts';

const COLORS: Record<string, string> = {
  api: '\x1b[36m',
  worker: '\x1b[35m',
  sim: '\x1b[33m',
  start: '\x1b[32m',
};
const LEVEL_COLORS: Record<string, string> = { warn: '\x1b[33m', error: '\x1b[31m', fatal: '\x1b[31m' };
const RESET = '\x1b[0m';
const tty = process.stdout.isTTY;
const paint = (color: string | undefined, s: string) => (tty && color ? `${color}${s}${RESET}` : s);
const HIDDEN = new Set(['time', 'level', 'service', 'instance', 'msg', 'pid', 'hostname']);
// A closed terminal must not turn the orderly stop into a crash.
process.stdout.on('error', () => {});

function print(name: string, line: Record<string, unknown>): void {
  const level = String(line.level ?? 'info');
  const time =
    typeof line.time === 'string' ? line.time.slice(11, 23) : new Date().toISOString().slice(11, 23);
  const fields = Object.entries(line)
    .filter(([k, v]) => !HIDDEN.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const tag = paint(COLORS[name], `[${name.padEnd(6)}]`);
  process.stdout.write(
    `${tag} ${time} ${paint(LEVEL_COLORS[level], level.toUpperCase().padEnd(5))} ${line.msg ?? ''} ${fields}\n`,
  );
}
const say = (msg: string) => print('start', { msg });
/** One line on stderr, then a stop with exit 1. */
const fail = (msg: string) => {
  process.stderr.write(`pnpm start: ${msg}\n`);
  return stopAll(1);
};

let env: StartEnv;
try {
  env = parseStartEnv();
} catch (err) {
  if (!(err instanceof EnvError)) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
}

/** Address to dial for a bind address (a wildcard bind answers on loopback). */
const dial = (host: string) =>
  host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;

const guard = guardProcessGroups(env.SHUTDOWN_GRACE_MS + 5000);
/** Started children, oldest first; stopped newest first. */
const children: SpawnedService[] = [];
let redisServer: RedisServerHandle | undefined;
let redisStarting: Promise<RedisServerHandle> | undefined;
let stopping: Promise<never> | undefined;

function stopAll(code: number): Promise<never> {
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
}

// pnpm forwards the terminal's SIGINT to this script, which got it from the terminal already:
// one Ctrl-C arrives twice within milliseconds. A signal a second later is a user's second Ctrl-C.
let firstSignalAt = 0;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (!stopping) {
      firstSignalAt = Date.now();
      void stopAll(0);
    } else if (Date.now() - firstSignalAt > 1000) {
      say('stopping at once (second signal)');
      for (const c of children) if (c.child.pid !== undefined) killGroup(c.child.pid);
      if (redisServer?.pid !== undefined) killGroup(redisServer.pid);
      process.exit(1);
    }
  });
}
function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // Gone already.
  }
}

const ModelList = z.object({ data: z.array(z.object({ id: z.string().min(1) })).min(1) });

/** What an OpenAI-compatible backend (vLLM, …) lists at `GET /v1/models`, or Anthropic's equivalent. */
async function listModels(baseUrl: string): Promise<{ url: string; models: string[] }> {
  const base = baseUrl.replace(/\/+$/, '');
  const anthropic = env.LLM_PROVIDER === 'anthropic';
  const url = anthropic ? `${base}/v1/models` : `${base}/models`;
  const key = env.LLM_API_KEY;
  const headers: Record<string, string> = anthropic
    ? { 'anthropic-version': '2023-06-01', ...(key && { 'x-api-key': key }) }
    : key
      ? { authorization: `Bearer ${key}` }
      : {};
  let body: unknown;
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    body = await res.json();
  } catch (err) {
    const cause = (err as Error & { cause?: { code?: string } }).cause?.code;
    throw new Error(`GET ${url} failed (${cause ?? (err as Error).message})`);
  }
  const parsed = ModelList.safeParse(body);
  if (!parsed.success) throw new Error(`GET ${url} lists no models`);
  return { url, models: parsed.data.data.map((m) => m.id) };
}

/** Whether this process could listen on `host:port` right now. */
function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, host, () => probe.close(() => resolve(true)));
  });
}

/** Polls `url` until it answers 200; rejects if `svc` exits first or after `timeoutMs`. */
async function waitHealthy(svc: SpawnedService, url: string, timeoutMs = 60_000): Promise<void> {
  let exited: number | string | undefined;
  void svc.exited.then((code) => {
    exited = code;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited !== undefined) throw new Error(`${svc.name} exited (${exited}) before it was ready`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${svc.name} did not answer ${url} within ${timeoutMs / 1000} s`);
}

async function main(): Promise<void> {
  const useSim = env.LLM_BASE_URL === undefined;
  let models = env.WORKER_MODELS;
  // A real backend: ask it what it serves before starting anything.
  if (!useSim && models === undefined) {
    try {
      const listed = await listModels(env.LLM_BASE_URL!);
      models = listed.models;
      say(`serving ${models.join(', ')}: listed by ${listed.url} (set WORKER_MODELS to choose)`);
    } catch (err) {
      return void fail(`${(err as Error).message}; set WORKER_MODELS to the models the backend serves`);
    }
  }

  const [port, simPort, metricsPort] = await Promise.all([
    env.PORT || freePort(),
    env.SIM_PORT || freePort(),
    env.METRICS_PORT || freePort(),
  ]);
  const simHost = env.SIM_HOST ?? env.HOST;
  const metricsHost = env.METRICS_HOST ?? env.HOST;
  // Checked first, and not only for a clear message: the health checks below would otherwise ask
  // whichever process holds the port (another stack's api) and call this stack ready.
  const taken = [
    ['PORT', env.HOST, port],
    ...(useSim ? [['SIM_PORT', simHost, simPort] as const] : []),
    ['METRICS_PORT', metricsHost, metricsPort],
  ] as const;
  for (const [name, host, p] of taken) {
    if (!(await portFree(host, p)))
      return void fail(
        `${name === 'PORT' ? 'port' : name} ${p} is in use: set ${name} to a free port (0: any)`,
      );
  }

  let redisUrl = env.REDIS_URL;
  if (await redisReachable(redisUrl)) {
    say(`using Redis at ${redisUrl}, key prefix ${env.KEY_PREFIX}`);
  } else if (redisServerAvailable()) {
    redisStarting = spawnRedisServer({ detached: true });
    redisServer = await redisStarting;
    if (redisServer.pid !== undefined) guard.add(redisServer.pid);
    redisUrl = redisServer.url;
    say(`no Redis at ${env.REDIS_URL}; started redis-server at ${redisUrl}`);
  } else {
    return void fail(
      `no Redis answers at ${redisUrl} and redis-server is not on the PATH.\n` +
        'Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis),\n' +
        'point REDIS_URL at one, or run the containerised stack: docker compose up -d',
    );
  }

  const shared = { REDIS_URL: redisUrl, KEY_PREFIX: env.KEY_PREFIX };
  const launch = (svc: 'api' | 'worker' | 'sim', extra: Record<string, string | undefined>) => {
    // A signal during startup: start nothing more (stopAll already took its list).
    if (stopping) throw new Error('stopping');
    const child = spawnService(
      svc,
      { ...shared, ...extra },
      { detached: true, onLine: (line) => print(svc, line) },
    );
    const pid = child.child.pid;
    if (pid !== undefined) guard.add(pid);
    children.push(child);
    void child.exited.then((code) => {
      if (pid !== undefined) guard.remove(pid);
      if (!stopping) {
        say(`${svc} exited (${code}); stopping the stack`);
        void stopAll(1);
      }
    });
    return child;
  };

  const simBase = `http://${dial(simHost)}:${simPort}`;
  let backend: Record<string, string | undefined> = {};
  if (useSim) {
    const sim = launch('sim', { SIM_PORT: String(simPort), SIM_HOST: simHost });
    await waitHealthy(sim, `${simBase}/health`);
    backend = {
      LLM_BASE_URL: `${simBase}${env.LLM_PROVIDER === 'openai' ? '/v1' : ''}`,
      LLM_HEALTH_URL: env.LLM_HEALTH_URL ?? `${simBase}/health`,
    };
    // SIM_MODEL may name other models than the worker's default: serve what the simulator does.
    if (models === undefined) {
      models = (await listModels(backend.LLM_BASE_URL!)).models;
      say(`serving ${models.join(', ')} (the simulator's models)`);
    }
  }
  const servedModels = models!;
  const defaultModel = env.DEFAULT_MODEL ?? servedModels[0]!;
  const worker = launch('worker', {
    ...backend,
    WORKER_MODELS: servedModels.join(','),
    METRICS_PORT: String(metricsPort),
    METRICS_HOST: metricsHost,
  });
  const api = launch('api', { PORT: String(port), HOST: env.HOST, DEFAULT_MODEL: defaultModel });
  const base = `http://${dial(env.HOST)}:${port}`;
  const metricsUrl = `http://${dial(metricsHost)}:${metricsPort}`;
  // Registered (its /health answers 200 only then) and listening: whatever LOG_LEVEL prints.
  await Promise.all([waitHealthy(worker, `${metricsUrl}/health`), waitHealthy(api, `${base}/livez`)]);

  const trusted = env.AUTH_MODE === 'trusted_headers';
  const keyFile = resolve(env.LLMGW_DEV_KEY_FILE);
  const auth = trusted ? `-H 'X-User-ID: demo'` : `-H 'Authorization: Bearer ${devKey(redisUrl, keyFile)}'`;
  say(
    `ready: api ${base}${useSim ? `, simulator ${simBase}` : `, backend ${env.LLM_BASE_URL}`}` +
      `, worker metrics ${metricsUrl}/metrics, default model ${defaultModel}` +
      (trusted ? '' : `, development key in ${env.LLMGW_DEV_KEY_FILE}`),
  );
  process.stdout.write(
    `\nTry it:\n  curl -N ${base}/chat ${auth} \\\n` +
      `    -d '{"messages":[{"role":"user","content":"Hello!"}],"max_tokens":32}'\n\n`,
  );
}

/** The local stack's API key (enterprise tier): created on first start, reused while valid. */
function devKey(redisUrl: string, file: string): string {
  const res = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--conditions=@llmgw/source', 'apps/api/src/cli/keys.ts', 'dev-key', file],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, REDIS_URL: redisUrl, KEY_PREFIX: env.KEY_PREFIX },
      encoding: 'utf8',
    },
  );
  if (res.status !== 0) throw new Error(`could not create a development key: ${res.stderr}`);
  return res.stdout.trim();
}

main().catch((err: Error) => {
  if (stopping) return;
  void fail(err.message);
});
