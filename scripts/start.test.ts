import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  freePort,
  postSSE,
  REPO_ROOT,
  redisReachable,
  scanKeys,
  spawnRedisServer,
  spawnService,
  until,
} from '@llmgw/devkit';
import { seedTokens } from '@llmgw/e2e';
import { afterEach, describe, expect, it } from 'vitest';

/** Variables of ours the developer's shell may hold: the tests say what they mean instead. */
const OURS =
  /^(PORT|HOST|REDIS_\w+|KEY_PREFIX|LOG_LEVEL|AUTH_MODE|MODELS|DEFAULT_MODEL|WORKER_\w+|METRICS_\w+|SIM_\w+|LLM_\w+|SHUTDOWN_GRACE_MS|MODEL_FORGET_AFTER_MS|LLMGW_\w+)$/;
const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !OURS.test(k)));

interface Run {
  child: ChildProcess;
  /** stdout lines so far. */
  out: string[];
  err: string[];
  exited: Promise<number | null>;
  /** The `curl -N` example is printed: the stack is ready. */
  ready: Promise<void>;
  /** What the ready output says. */
  info(): {
    api: string;
    metrics: string;
    key: string | undefined;
    keyFile: string | undefined;
    redisUrl: string | undefined;
  };
  /** SIGTERM (to the group with pnpm) unless it exited; waits for the exit. */
  stop(): Promise<void>;
}

const runs: Run[] = [];
afterEach(async () => {
  await Promise.all(runs.splice(0).map((r) => r.stop()));
});

/** A dev-state file of the test's own (never the checkout's), in a directory removed after the test. */
const stateDirs: string[] = [];
afterEach(() => {
  for (const d of stateDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempStateFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'llmgw-state-'));
  stateDirs.push(dir);
  return join(dir, 'dev-state.json');
}

/**
 * `scripts/start.ts` as `pnpm start` runs it, or `pnpm start` itself in a process group of its own
 * (a terminal). Its dev-state file is a temporary one unless `env` names one.
 */
function runStart(env: Record<string, string>, opts: { viaPnpm?: boolean } = {}): Run {
  const spawnOpts = {
    cwd: REPO_ROOT,
    env: { ...cleanEnv(), LLMGW_DEV_STATE_FILE: tempStateFile(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'],
  };
  const child = opts.viaPnpm
    ? spawn('pnpm', ['start'], { ...spawnOpts, detached: true })
    : spawn(
        process.execPath,
        ['--import', 'tsx', '--conditions=@llmgw/source', 'scripts/start.ts'],
        spawnOpts,
      );
  const out: string[] = [];
  const err: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      out.push(l);
      if (l.includes('curl -N')) resolve();
    });
    createInterface({ input: child.stderr! }).on('line', (l) => err.push(l));
    void exited.then((code) =>
      reject(new Error(`pnpm start exited (${code}):\n${[...out, ...err].join('\n')}`)),
    );
  });
  ready.catch(() => {});
  const text = () => out.join('\n');
  const run: Run = {
    child,
    out,
    err,
    exited,
    ready,
    info: () => ({
      api: /ready: api (http:\/\/\S+?),/.exec(text())?.[1] ?? '',
      metrics: /worker metrics (http:\/\/\S+?)\/metrics/.exec(text())?.[1] ?? '',
      key: /Authorization: Bearer (llmgw_\S+)'/.exec(text())?.[1],
      keyFile: /development key in (\S+)/.exec(text())?.[1],
      redisUrl: /started redis-server at (redis:\/\/\S+)/.exec(text())?.[1],
    }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        if (opts.viaPnpm) process.kill(-child.pid!, 'SIGTERM');
        else child.kill('SIGTERM');
      }
      await exited;
    },
  };
  runs.push(run);
  return run;
}

const ask = (max_tokens: number) => ({ messages: [{ role: 'user', content: 'Hello!' }], max_tokens });
const bearer = (key: string | undefined) => ({ authorization: `Bearer ${key}` });
const errorType = (frame: string | undefined) => {
  try {
    return (JSON.parse(frame ?? '') as { error?: { type?: string } }).error?.type;
  } catch {
    return undefined;
  }
};

/**
 * Opens a stream of `tokens` tokens, calls `interrupt` at its first frame, and returns it once it
 * ended. It must end as a stream does, not as a cut connection: `[DONE]` after every token, or a
 * `shutting_down` error frame.
 */
async function streamThrough(url: string, key: string | undefined, tokens: number, interrupt: () => void) {
  let interrupted = false;
  const res = await postSSE(`${url}/chat`, ask(tokens), {
    headers: bearer(key),
    onData: () => {
      if (!interrupted) {
        interrupted = true;
        interrupt();
      }
      return undefined;
    },
  });
  expect(res.status).toBe(200);
  expect(interrupted).toBe(true);
  const last = res.data.at(-1);
  // Frames are not tokens: neighbouring text merges into one frame under load.
  if (last === '[DONE]') expect(seedTokens(res.data)).toHaveLength(tokens);
  else expect(errorType(last)).toBe('shutting_down');
}

/**
 * `pnpm keys <args>` in a second terminal: the developer's environment (none of our variables)
 * plus `env`. Its stdout without pnpm's own `> llm-gateway@ keys …` header lines.
 */
async function pnpmKeys(args: string[], env: Record<string, string>) {
  const child = spawn('pnpm', ['keys', ...args], {
    cwd: REPO_ROOT,
    env: { ...cleanEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const out = stdout
    .split('\n')
    .filter((l) => !l.startsWith('> '))
    .join('\n')
    .trim();
  return { code, stdout: out, stderr };
}

interface StateFile {
  stacks: { pid: number; api: string; redis: string; key_prefix: string; key_file?: string }[];
}
const readState = (file: string): StateFile | undefined =>
  existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as StateFile) : undefined;

/** Whether a TCP connection to 127.0.0.2:`port` succeeds: a socket bound to 127.0.0.1 refuses it, one bound to 0.0.0.0 takes it. */
const dialOtherLoopback = (port: number) =>
  new Promise<string>((resolve) => {
    const s = connect(port, '127.0.0.2');
    s.on('connect', () => {
      s.destroy();
      resolve('open');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });

const portOf = (url: string) => Number(new URL(url).port);
const refuses = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(true));
  });

describe('pnpm start', () => {
  it('LOG_LEVEL=warn: own redis-server, ready, loopback only, own key file and prefix; SIGINT to start.ts alone lets the open stream end, exit 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llmgw-start-'));
    const checkout = ['.llmgw-dev-key', '.llmgw-dev-state.json'].map((f) => join(REPO_ROOT, f));
    const stamp = () =>
      checkout
        .map((f) => (existsSync(f) ? `${statSync(f).mtimeMs}:${readFileSync(f, 'utf8')}` : 'none'))
        .join('\n');
    const checkoutBefore = stamp();
    const [port, simPort, deadRedis] = await Promise.all([freePort(), freePort(), freePort()]);
    const keyFile = join(dir, 'dev-key');
    const run = runStart({
      PORT: String(port),
      SIM_PORT: String(simPort),
      // No Redis there: the script must start its own redis-server.
      REDIS_URL: `redis://127.0.0.1:${deadRedis}`,
      LOG_LEVEL: 'warn',
      LLMGW_DEV_KEY_FILE: keyFile,
    });
    try {
      await run.ready;
      const { api, metrics, key, redisUrl } = run.info();
      expect(api).toBe(`http://127.0.0.1:${port}`);
      expect(redisUrl).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
      // The children honour LOG_LEVEL, the simulator too: not one info line from them.
      expect(run.out.filter((l) => /^\[(api|worker|sim) *\] \S+ INFO/.test(l))).toEqual([]);

      // The ready line's example carries the development key, kept where LLMGW_DEV_KEY_FILE says.
      expect(key).toBeTruthy();
      expect(readFileSync(keyFile, 'utf8').trim()).toBe(key);
      const denied = await postSSE(`${api}/chat`, ask(4));
      expect(denied.status).toBe(401);
      const res = await postSSE(`${api}/chat`, ask(4), { headers: bearer(key) });
      expect(res.status).toBe(200);
      expect(seedTokens(res.data)).toHaveLength(4);

      // Everything under the dev stack's own prefix.
      expect((await scanKeys(redisUrl!, 'llmgw-dev:*')).length).toBeGreaterThan(0);
      expect(await scanKeys(redisUrl!, 'llmgw:*')).toEqual([]);

      // Bound to 127.0.0.1: api, simulator and worker metrics. The control shows the probe can tell.
      const control: Server = await new Promise((resolve) => {
        const s = createServer().listen(0, '0.0.0.0', () => resolve(s));
      });
      try {
        expect(await dialOtherLoopback((control.address() as { port: number }).port)).toBe('open');
      } finally {
        control.close();
      }
      for (const p of [port, simPort, portOf(metrics)])
        expect(await dialOtherLoopback(p)).toBe('ECONNREFUSED');

      // Ctrl-C reaching start.ts only (its children are not in its process group).
      await streamThrough(api, key, 100, () => run.child.kill('SIGINT'));
      expect(await run.exited).toBe(0);
      expect(run.out.join('\n')).not.toMatch(/exited \(/);
      expect(stamp()).toBe(checkoutBefore);
    } finally {
      await run.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);

  it("through pnpm, the terminal's Ctrl-C (SIGINT to the whole group): the open stream ends, exit 0, no ELIFECYCLE", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llmgw-start-'));
    const [port, simPort, deadRedis] = await Promise.all([freePort(), freePort(), freePort()]);
    const run = runStart(
      {
        PORT: String(port),
        SIM_PORT: String(simPort),
        REDIS_URL: `redis://127.0.0.1:${deadRedis}`,
        LLMGW_DEV_KEY_FILE: join(dir, 'dev-key'),
      },
      { viaPnpm: true },
    );
    try {
      await run.ready;
      // At the default level, every process's lines are printed under its name.
      expect(run.out.some((l) => l.startsWith('[api   ]') && l.includes('api_listening'))).toBe(true);
      expect(run.out.some((l) => l.startsWith('[sim   ]') && l.includes('sim_listening'))).toBe(true);
      const { api, key } = run.info();
      // The terminal signals pnpm, the shell and start.ts; pnpm forwards it once more.
      await streamThrough(api, key, 100, () => process.kill(-run.child.pid!, 'SIGINT'));
      expect(await run.exited).toBe(0);
      expect([...run.out, ...run.err].join('\n')).not.toMatch(/ELIFECYCLE|exited \(/);
    } finally {
      await run.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);

  it('two stacks on one machine and one Redis, the second with only PORT and SIM_PORT set, port 9100 taken', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llmgw-start-'));
    const redis = await spawnRedisServer();
    // The worker's default METRICS_PORT: pnpm start must not need it (busy already is fine too).
    const blocker = createServer();
    await new Promise<void>((resolve) => {
      blocker.once('error', () => resolve());
      blocker.listen(9100, '0.0.0.0', () => resolve());
    });
    try {
      const stacks: Run[] = [];
      for (let i = 0; i < 2; i++) {
        const [port, simPort] = await Promise.all([freePort(), freePort()]);
        const run = runStart({
          PORT: String(port),
          SIM_PORT: String(simPort),
          REDIS_URL: redis.url,
          LLMGW_DEV_KEY_FILE: join(dir, 'dev-key'),
        });
        await run.ready;
        stacks.push(run);
      }
      const [a, b] = stacks.map((s) => s.info());
      expect(a!.api).not.toBe(b!.api);
      expect(a!.metrics).not.toBe(b!.metrics);
      for (const s of [a!, b!]) {
        expect(portOf(s.metrics)).not.toBe(9100);
        const res = await postSSE(`${s.api}/chat`, ask(4), { headers: bearer(s.key) });
        expect(res.status).toBe(200);
        expect(res.data.at(-1)).toBe('[DONE]');
      }
      for (const s of stacks) s.child.kill('SIGINT');
      expect(await Promise.all(stacks.map((s) => s.exited))).toEqual([0, 0]);
    } finally {
      blocker.close();
      await Promise.all(runs.map((r) => r.stop()));
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('LLM_BASE_URL alone: serves what the backend lists at /v1/models; killed hard, it takes its children along', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llmgw-start-'));
    const [simPort, port, deadRedis] = await Promise.all([freePort(), freePort(), freePort()]);
    const sim = spawnService('sim', {}, { args: ['--port', String(simPort), '--model', 'my-own-model'] });
    try {
      await sim.waitFor((l) => l.msg === 'sim_listening');
      const backend = `http://127.0.0.1:${simPort}/v1`;
      const run = runStart({
        PORT: String(port),
        REDIS_URL: `redis://127.0.0.1:${deadRedis}`,
        LLM_BASE_URL: backend,
        SHUTDOWN_GRACE_MS: '2000',
        LLMGW_DEV_KEY_FILE: join(dir, 'dev-key'),
      });
      await run.ready;
      expect(run.out.join('\n')).toContain(`serving my-own-model: listed by ${backend}/models`);
      const { api, metrics, key, redisUrl } = run.info();
      // No model named: the default model is the backend's.
      const res = await postSSE(`${api}/chat`, ask(4), { headers: bearer(key) });
      expect(res.status).toBe(200);
      expect(res.data.at(-1)).toBe('[DONE]');
      const logged = (await (await fetch(`http://127.0.0.1:${simPort}/sim/requests`)).json()) as {
        requests: { body: { model?: string } }[];
      };
      expect(logged.requests.at(-1)?.body.model).toBe('my-own-model');

      // SIGKILL: no handler runs in start.ts; its watchdog stops the api, the worker and Redis.
      run.child.kill('SIGKILL');
      await run.exited;
      expect(
        await until(
          async () =>
            (await refuses(port)) &&
            (await refuses(portOf(metrics))) &&
            !(await redisReachable(redisUrl!, 200)),
          60_000,
          200,
        ),
      ).toBe(true);
    } finally {
      await sim.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it("the README's 401 advice, `pnpm keys create --user alice --tier pro`, makes a key the running stack (own redis-server, llmgw-dev) accepts", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llmgw-start-'));
    const state = join(dir, 'dev-state.json');
    const [port, simPort, deadRedis] = await Promise.all([freePort(), freePort(), freePort()]);
    const run = runStart({
      PORT: String(port),
      SIM_PORT: String(simPort),
      REDIS_URL: `redis://127.0.0.1:${deadRedis}`,
      LOG_LEVEL: 'warn',
      LLMGW_DEV_KEY_FILE: join(dir, 'dev-key'),
      LLMGW_DEV_STATE_FILE: state,
    });
    try {
      await run.ready;
      const { api, redisUrl } = run.info();
      // The stack says where it is, for the CLI.
      expect(readState(state)?.stacks).toMatchObject([
        { pid: run.child.pid, api, redis: redisUrl, key_prefix: 'llmgw-dev', key_file: join(dir, 'dev-key') },
      ]);

      // A second terminal, no variables of ours: only the state file's place, which is the
      // checkout's own by default.
      const created = await pnpmKeys(['create', '--user', 'alice', '--tier', 'pro'], {
        LLMGW_DEV_STATE_FILE: state,
      });
      expect(created.code).toBe(0);
      expect(created.stderr).toContain(`the dev stack at ${api} (Redis ${redisUrl}, key prefix llmgw-dev)`);
      const key = /^(llmgw_\S+)$/m.exec(created.stdout)?.[1];
      expect(key).toBeDefined();
      const res = await postSSE(`${api}/chat`, ask(4), { headers: bearer(key) });
      expect(res.status).toBe(200);
      expect(seedTokens(res.data)).toHaveLength(4);

      // Revoked by the key: the answer names its id and user, never the key; the stack refuses it.
      const revoked = await pnpmKeys(['revoke', key!], { LLMGW_DEV_STATE_FILE: state });
      expect(revoked.code).toBe(0);
      expect(revoked.stdout).toMatch(/^revoked key_\w{12} \(user alice\)$/);
      expect(revoked.stdout + revoked.stderr).not.toContain(key);
      await expect
        .poll(async () => (await postSSE(`${api}/chat`, ask(1), { headers: bearer(key) })).status, {
          timeout: 5000,
        })
        .toBe(401);

      run.child.kill('SIGINT');
      expect(await run.exited).toBe(0);
      // Stopped: its entry goes, and with it the file.
      expect(existsSync(state)).toBe(false);
    } finally {
      await run.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);

  it('two stacks, each on a redis-server of its own, one key file: the first keeps it, the second says where its key is; a stale key is replaced, saying so', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llmgw-start-'));
    const state = join(dir, 'dev-state.json');
    const keyFile = join(dir, 'dev-key');
    const deadRedis = await freePort();
    const start = async () => {
      const [port, simPort] = await Promise.all([freePort(), freePort()]);
      const run = runStart({
        PORT: String(port),
        SIM_PORT: String(simPort),
        REDIS_URL: `redis://127.0.0.1:${deadRedis}`,
        LOG_LEVEL: 'warn',
        LLMGW_DEV_KEY_FILE: keyFile,
        LLMGW_DEV_STATE_FILE: state,
      });
      await run.ready;
      return { run, port, ...run.info() };
    };
    try {
      const a = await start();
      expect(a.keyFile).toBe(keyFile);
      const b = await start();
      expect(b.redisUrl).not.toBe(a.redisUrl);
      // The first stack's key file is left alone; the second's key is beside it, and it says so.
      expect(readFileSync(keyFile, 'utf8').trim()).toBe(a.key);
      expect(b.keyFile).toBe(`${keyFile}.${b.port}`);
      expect(readFileSync(b.keyFile!, 'utf8').trim()).toBe(b.key);
      expect(b.run.out.join('\n')).toContain(
        `${keyFile} holds the key of the stack at ${a.api} (Redis ${a.redisUrl}, key prefix llmgw-dev): left as it is; this stack's key is in ${keyFile}.${b.port}`,
      );
      for (const s of [a, b]) {
        expect((await postSSE(`${s.api}/chat`, ask(2), { headers: bearer(s.key) })).status).toBe(200);
      }
      expect((await postSSE(`${a.api}/chat`, ask(2), { headers: bearer(b.key) })).status).toBe(401);

      // Which one `pnpm keys` should use is for the developer to say.
      const both = await pnpmKeys(['list'], { LLMGW_DEV_STATE_FILE: state });
      expect(both.code).toBe(2);
      expect(both.stderr).toContain('2 dev stacks run, on different Redis or key prefixes');
      expect(both.stderr).toContain(`${a.api}: Redis ${a.redisUrl}, key prefix llmgw-dev`);
      expect(both.stderr).toContain(`${b.api}: Redis ${b.redisUrl}, key prefix llmgw-dev`);
      const chosen = await pnpmKeys(['list'], {
        LLMGW_DEV_STATE_FILE: state,
        REDIS_URL: b.redisUrl!,
        KEY_PREFIX: 'llmgw-dev',
      });
      expect(chosen.code).toBe(0);
      expect(chosen.stdout).toMatch(/^key_\w{12} {2}dev +enterprise/);

      // The second one stopped, the first is the stack the CLI finds again.
      b.run.child.kill('SIGINT');
      expect(await b.run.exited).toBe(0);
      expect(readState(state)?.stacks.map((s) => s.api)).toEqual([a.api]);
      const one = await pnpmKeys(['create', '--user', 'alice', '--tier', 'pro', '--quiet'], {
        LLMGW_DEV_STATE_FILE: state,
      });
      expect(one.code).toBe(0);
      expect((await postSSE(`${a.api}/chat`, ask(2), { headers: bearer(one.stdout) })).status).toBe(200);

      // Both gone, and the first one's redis-server with its key: the next start replaces the
      // key in the file, and says so.
      a.run.child.kill('SIGINT');
      expect(await a.run.exited).toBe(0);
      const c = await start();
      expect(c.keyFile).toBe(keyFile);
      expect(c.key).not.toBe(a.key);
      expect(readFileSync(keyFile, 'utf8').trim()).toBe(c.key);
      expect(c.run.out.join('\n')).toContain(
        `replaced the key in ${keyFile}: this stack does not accept it, and no running stack uses it`,
      );
      expect((await postSSE(`${c.api}/chat`, ask(2), { headers: bearer(c.key) })).status).toBe(200);
    } finally {
      await Promise.all(runs.map((r) => r.stop()));
      rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);

  it('a PORT in use (another stack): one clear line, exit 1, never ready', async () => {
    const blocker = createServer();
    const port = await new Promise<number>((resolve) =>
      blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port)),
    );
    try {
      const [simPort, deadRedis] = await Promise.all([freePort(), freePort()]);
      const run = runStart({
        PORT: String(port),
        SIM_PORT: String(simPort),
        REDIS_URL: `redis://127.0.0.1:${deadRedis}`,
      });
      expect(await run.exited).toBe(1);
      expect(run.err).toEqual([`pnpm start: port ${port} is in use: set PORT to a free port (0: any)`]);
      expect(run.out.join('\n')).not.toContain('ready');
    } finally {
      blocker.close();
    }
  });

  it('LLM_BASE_URL whose /v1/models does not answer: one clear line, exit 1, nothing started', async () => {
    const [dead, port] = await Promise.all([freePort(), freePort()]);
    const run = runStart({ PORT: String(port), LLM_BASE_URL: `http://127.0.0.1:${dead}/v1` });
    expect(await run.exited).toBe(1);
    expect(run.err).toEqual([
      `pnpm start: GET http://127.0.0.1:${dead}/v1/models failed (ECONNREFUSED); set WORKER_MODELS to the models the backend serves`,
    ]);
    expect(run.out.filter((l) => /^\[(api|worker|sim)/.test(l))).toEqual([]);
  });
});
