/**
 * `pnpm start`: the whole stack on this machine, one command.
 *  - Redis: REDIS_URL if it answers, else a private redis-server from the PATH on a free port.
 *  - The simulator on SIM_PORT (default 8001), unless LLM_BASE_URL points at a real backend.
 *  - One api (PORT, default 8000) and one worker.
 * Logs of every process, prefixed by its name, readable rather than JSON. Ctrl-C stops all.
 */
import { spawnSync } from 'node:child_process';
import {
  REPO_ROOT,
  type RedisServerHandle,
  redisReachable,
  redisServerAvailable,
  type SpawnedService,
  spawnRedisServer,
  spawnService,
} from '@llmgw/devkit';

const env = process.env;
const port = env.PORT ?? '8000';
const simPort = env.SIM_PORT ?? '8001';
const useSim = !env.LLM_BASE_URL;

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

const children: SpawnedService[] = [];
let redisServer: RedisServerHandle | undefined;
let stopping = false;

async function stopAll(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    say('stopping');
    await Promise.all(children.map((c) => c.stop('SIGTERM')));
    await redisServer?.stop();
  }
  process.exit(code);
}
process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));

async function main(): Promise<void> {
  let redisUrl = env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  if (await redisReachable(redisUrl)) {
    say(`using Redis at ${redisUrl}`);
  } else if (redisServerAvailable()) {
    redisServer = await spawnRedisServer();
    redisUrl = redisServer.url;
    say(`no Redis at ${env.REDIS_URL ?? 'redis://127.0.0.1:6379'}; started redis-server at ${redisUrl}`);
  } else {
    process.stderr.write(
      `No Redis answers at ${redisUrl} and redis-server is not on the PATH.\n` +
        'Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis),\n' +
        'point REDIS_URL at one, or run the containerised stack: docker compose up -d\n',
    );
    process.exit(1);
  }

  const shared = { REDIS_URL: redisUrl };
  const launch = (svc: 'api' | 'worker' | 'sim', extra: Record<string, string | undefined>) => {
    const child = spawnService(svc, { ...shared, ...extra }, { onLine: (line) => print(svc, line) });
    children.push(child);
    child.exited.then((code) => {
      if (!stopping) {
        say(`${svc} exited (${code}); stopping the stack`);
        void stopAll(1);
      }
    });
    return child;
  };

  const waits: Promise<unknown>[] = [];
  if (useSim) {
    const sim = launch('sim', { SIM_PORT: simPort });
    waits.push(sim.waitFor((l) => l.msg === 'sim_listening'));
  }
  const worker = launch('worker', { SIM_PORT: simPort });
  const api = launch('api', { PORT: port });
  waits.push(
    worker.waitFor((l) => l.msg === 'worker_started'),
    api.waitFor((l) => l.msg === 'api_listening'),
  );
  await Promise.all(waits);

  const base = `http://127.0.0.1:${port}`;
  const trusted = env.AUTH_MODE === 'trusted_headers';
  const auth = trusted ? `-H 'X-User-ID: demo'` : `-H 'Authorization: Bearer ${devKey(redisUrl)}'`;
  say(
    `ready: api ${base}${useSim ? `, simulator http://127.0.0.1:${simPort}` : `, backend ${env.LLM_BASE_URL}`}` +
      (trusted ? '' : `, development key in ${DEV_KEY_FILE}`),
  );
  process.stdout.write(
    `\nTry it:\n  curl -N ${base}/chat ${auth} \\\n` +
      `    -d '{"messages":[{"role":"user","content":"Hello!"}],"max_tokens":32}'\n\n`,
  );
}

/** The local stack's API key (enterprise tier): created on first start, reused while valid. */
const DEV_KEY_FILE = '.llmgw-dev-key';
function devKey(redisUrl: string): string {
  const res = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--conditions=@llmgw/source', 'apps/api/src/cli/keys.ts', 'dev-key', DEV_KEY_FILE],
    { cwd: REPO_ROOT, env: { ...process.env, REDIS_URL: redisUrl }, encoding: 'utf8' },
  );
  if (res.status !== 0) throw new Error(`could not create a development key: ${res.stderr}`);
  return res.stdout.trim();
}

main().catch((err: Error) => {
  process.stderr.write(`pnpm start failed: ${err.message}\n`);
  void stopAll(1);
});
