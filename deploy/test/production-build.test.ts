/**
 * The production images without Docker: copy the build context as .dockerignore filters it, run
 * the build stage's `RUN pnpm …` lines of Dockerfile.api/.worker/.sim there (fetch, frozen
 * offline install, build, `pnpm deploy --prod` into a folder standing for /out), then start each
 * deploy output the way its runtime stage does (`node dist/main.js`, the image's ENV) with plain
 * node — no tsx, no dev dependency — and stream a chat through the three of them.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteKeysWithPrefix, freePort, postSSE } from '@llmgw/devkit';
import { seedTokens } from '@llmgw/e2e';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { copyBuildContext, REPO_ROOT, type RunningProcess, readDockerfile, startProcess } from './support.ts';

const SERVICES = ['api', 'worker', 'sim'] as const;
type Service = (typeof SERVICES)[number];
const dockerfile = (s: Service) => readDockerfile(join(REPO_ROOT, `Dockerfile.${s}`));

/** Tools that must not be in a production install. */
const DEV_ONLY = ['tsx', 'vitest', 'typescript', 'vite', 'esbuild', '@biomejs', '@llmgw/devkit', 'openai'];

/** The environment of a `docker build` step: this machine's, minus what the test runner adds. */
function buildEnv(): Record<string, string> {
  const env: Record<string, string> = { CI: 'true' };
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^(npm_|PNPM_SCRIPT|VITEST|NODE_OPTIONS$|NODE_ENV$|TEST$)/i.test(k)) continue;
    env[k] = v;
  }
  return env;
}

function sh(command: string, cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], { cwd, env: buildEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`\`${command}\` exited ${code}:\n${output.slice(-3000)}`)),
    );
  });
}

/** `ENV a=1 b=2` lines of the runtime stage. */
function runtimeEnv(s: Service): Record<string, string> {
  const env: Record<string, string> = {};
  for (const ins of dockerfile(s).stages.at(-1)!.instructions) {
    if (ins.keyword !== 'ENV') continue;
    for (const pair of ins.args.split(/\s+/)) {
      const [k, ...v] = pair.split('=');
      env[k!] = v.join('=');
    }
  }
  return env;
}

function instruction(s: Service, keyword: string): string[] {
  const ins = dockerfile(s)
    .stages.at(-1)!
    .instructions.find((i) => i.keyword === keyword);
  if (!ins?.exec) throw new Error(`Dockerfile.${s}: no exec-form ${keyword}`);
  return ins.exec;
}

/** Every package folder name in a pnpm node_modules (top level and the .pnpm store). */
function installedPackages(nodeModules: string): string[] {
  const names = readdirSync(nodeModules).filter((n) => n !== '.pnpm' && !n.startsWith('.'));
  const scoped = names
    .filter((n) => n.startsWith('@'))
    .flatMap((s) => readdirSync(join(nodeModules, s)).map((n) => `${s}/${n}`));
  // .pnpm holds `<name>@<version>[_peers]`, a scope's `/` written as `+`.
  const store = existsSync(join(nodeModules, '.pnpm'))
    ? readdirSync(join(nodeModules, '.pnpm')).flatMap((n) => {
        const at = n.indexOf('@', 1);
        return at > 0 ? [n.slice(0, at).replace('+', '/')] : [];
      })
    : [];
  return [...names.filter((n) => !n.startsWith('@')), ...scoped, ...store];
}

describe('production build: the Dockerfiles’ steps, run without Docker', () => {
  const work = mkdtempSync(join(tmpdir(), 'llmgw-prod-'));
  const context = join(work, 'context');
  const out = (s: Service) => join(work, 'out', s);
  const running: RunningProcess[] = [];

  beforeAll(async () => {
    copyBuildContext(REPO_ROOT, context);
    const done = new Set<string>();
    for (const s of SERVICES) {
      const build = dockerfile(s).stages[0]!;
      for (const ins of build.instructions) {
        if (ins.keyword !== 'RUN' || !ins.args.startsWith('pnpm ')) continue;
        const command = ins.args.replace(/\s\/out$/, ` ${out(s)}`);
        if (done.has(command)) continue;
        done.add(command);
        await sh(command, context);
      }
    }
  }, 600_000);

  afterAll(async () => {
    await Promise.all(running.map((p) => p.stop('SIGKILL')));
    rmSync(work, { recursive: true, force: true });
  });

  it.each(SERVICES)('%s: the deploy output has dist/main.js and no dev dependency', (s) => {
    expect(existsSync(join(out(s), 'dist/main.js'))).toBe(true);
    expect(existsSync(join(out(s), 'package.json'))).toBe(true);
    const installed = installedPackages(join(out(s), 'node_modules'));
    expect(installed.length).toBeGreaterThan(0);
    const dev = DEV_ONLY.filter((d) => s !== 'worker' || d !== 'openai');
    expect(installed.filter((p) => dev.some((d) => p === d || p.startsWith(`${d}/`)))).toEqual([]);
  });

  describe('the three outputs started as their images start them', () => {
    const ports = { api: 0, sim: 0, metrics: 0 };
    const procs = {} as Record<Service, RunningProcess>;
    const keyPrefix = `test-${randomUUID()}`;
    /** The image's ENV, then the test's Redis and ports. */
    const env = (s: Service, own: Record<string, string>) => ({
      ...runtimeEnv(s),
      REDIS_URL: inject('redisUrl'),
      KEY_PREFIX: keyPrefix,
      ...own,
    });

    beforeAll(async () => {
      [ports.api, ports.sim, ports.metrics] = await Promise.all([freePort(), freePort(), freePort()]);
      const start = (s: Service, own: Record<string, string>) => {
        const [cmd, ...args] = instruction(s, 'CMD');
        const p = startProcess(s, cmd!, args, { cwd: out(s), env: env(s, own) });
        running.push(p);
        procs[s] = p;
        return p;
      };
      start('sim', { SIM_PORT: String(ports.sim), SIM_HOST: '127.0.0.1', SIM_TTFT_MS: '5', SIM_ITL_MS: '2' });
      start('worker', { SIM_PORT: String(ports.sim), METRICS_PORT: String(ports.metrics) });
      start('api', { PORT: String(ports.api), HOST: '127.0.0.1', AUTH_MODE: 'trusted_headers' });
      await Promise.all([
        procs.sim.waitFor((l) => l.msg === 'sim_listening'),
        procs.worker.waitFor((l) => l.msg === 'worker_started'),
        procs.api.waitFor((l) => l.msg === 'api_listening'),
      ]);
    }, 60_000);

    afterAll(async () => {
      await Promise.all(SERVICES.map((s) => procs[s]?.stop('SIGKILL')));
      await deleteKeysWithPrefix(inject('redisUrl'), keyPrefix);
    });

    it('stream a chat: api → Redis → worker → simulator, all from dist/', async () => {
      const res = await postSSE(
        `http://127.0.0.1:${ports.api}/chat`,
        { messages: [{ role: 'user', content: 'hello from the production build' }], max_tokens: 5 },
        { headers: { 'X-User-ID': `prod-${randomUUID()}` } },
      );
      expect(res.status).toBe(200);
      expect(res.data.at(-1)).toBe('[DONE]');
      // Tokens, not frames: a busy worker coalesces the tokens that arrive while it publishes.
      expect(seedTokens(res.data)).toHaveLength(5);
      expect(procs.api.lines.find((l) => l.msg === 'api_listening')).toMatchObject({ service: 'api' });
    });

    it.each(SERVICES)('%s: the image HEALTHCHECK command passes', async (s) => {
      const [cmd, ...args] = instruction(s, 'HEALTHCHECK');
      const own: Record<string, string> = {
        api: { PORT: String(ports.api) },
        worker: { METRICS_PORT: String(ports.metrics) },
        sim: { SIM_PORT: String(ports.sim) },
      }[s];
      const check = startProcess(`${s}-healthcheck`, cmd!, args, { cwd: out(s), env: env(s, own) });
      expect(await check.exited).toBe(0);
    });

    it.each(SERVICES)('%s: SIGTERM ends the process with exit code 0', async (s) => {
      expect(await procs[s].stop('SIGTERM')).toBe(0);
    });
  });
});
