/**
 * The production images without Docker (issue 23 §1). Dockerfile.api/.worker/.sim are parsed and
 * built layer by layer (layered-build.ts): each `RUN` step of the build stage runs in a directory
 * holding only what the `COPY` lines before it brought (the context as .dockerignore filters it),
 * at the stage's WORKDIR, with its ENV. A step that needs a file copied only later fails here as it
 * fails in `docker build` — as `pnpm fetch` did while patches/ came with `COPY . .`.
 *
 * The runtime stage is then assembled from its `COPY --from=build` lines in a temporary directory
 * outside any repository, the build stages deleted, and each image started as Docker starts it
 * (its CMD, WORKDIR and ENV, no inherited environment) with plain node: health endpoints answer,
 * and a chat streams through the three.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  renameSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { deleteKeysWithPrefix, freePort, postSSE } from '@llmgw/devkit';
import { seedTokens } from '@llmgw/e2e';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type BuiltStage, LayeredBuild, pinnedPnpm } from './layered-build.ts';
import { REPO_ROOT, type RunningProcess, startProcess } from './support.ts';

const SERVICES = ['api', 'worker', 'sim'] as const;
type Service = (typeof SERVICES)[number];
const dockerfileOf = (s: Service) => `Dockerfile.${s}`;

/** Tools that must not be in a production install. */
const DEV_ONLY = ['tsx', 'vitest', 'typescript', 'vite', 'esbuild', '@biomejs', '@llmgw/devkit', 'openai'];

/**
 * The image's toolchain step: corepack installing the pnpm that package.json pins. The host's pnpm
 * stands in for it (checked below to be that version); every other RUN step runs.
 */
const TOOLCHAIN_STEP = /^npm install -g corepack@[\w.-]+ && corepack enable$/;

/** The environment a build step starts from: this machine's, minus what the test runner adds. */
function hostEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^(npm_|PNPM_|VITEST|NODE_OPTIONS$|NODE_ENV$|TEST$)/i.test(k)) continue;
    env[k] = v;
  }
  return env;
}

/**
 * This machine's pnpm store. The image keeps its store under PNPM_HOME; here every build step uses
 * the shared one, so `pnpm fetch` downloads only what it has never seen.
 */
function pnpmStoreDir(): string {
  const r = spawnSync('pnpm', ['store', 'path'], { cwd: tmpdir(), encoding: 'utf8', env: hostEnv() });
  if (r.status !== 0) throw new Error(`pnpm store path: ${r.stderr}`);
  return dirname(r.stdout.trim());
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

/** Symlinks under `root` whose target is outside it (or missing): they would dangle in the image. */
function linksLeaving(root: string): string[] {
  const bad: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const abs = join(dir, e.name);
      if (e.isSymbolicLink()) {
        let target = '';
        try {
          target = realpathSync(abs);
        } catch {}
        if (target === '' || !(target === root || target.startsWith(`${root}${sep}`)))
          bad.push(relative(root, abs));
      } else if (e.isDirectory()) walk(abs);
    }
  };
  walk(root);
  return bad;
}

/** Directories from `dir` up to `/` that hold a node_modules: any would let a missing package resolve. */
const nodeModulesAbove = (dir: string): string[] => {
  const found: string[] = [];
  for (let d = dirname(dir); ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules'))) found.push(d);
    if (d === dirname(d)) return found;
  }
};

describe('production images: the Dockerfiles built layer by layer, run without Docker', () => {
  const work = realpathSync(mkdtempSync(join(tmpdir(), 'llmgw-prod-')));
  const images = {} as Record<Service, BuiltStage>;
  const steps: string[] = [];
  const running: RunningProcess[] = [];

  beforeAll(async () => {
    const started = Date.now();
    const build = new LayeredBuild({
      context: REPO_ROOT,
      workDir: join(work, 'layers'),
      baseEnv: hostEnv(),
      runEnv: { npm_config_store_dir: pnpmStoreDir() },
      skipRun: (command) => TOOLCHAIN_STEP.test(command),
      onStep: (file, stage, ins, ms) =>
        steps.push(`${String(ms).padStart(6)} ms ${file} ${stage}: ${ins.keyword} ${ins.args}`),
    });
    build.plan(SERVICES.map(dockerfileOf));
    for (const s of SERVICES) {
      const stages = [...(await build.build(dockerfileOf(s))).values()];
      const runtime = stages.at(-1)!;
      // The image alone, in its own directory: the build stages and the context are deleted below.
      const root = join(work, 'images', s);
      mkdirSync(dirname(root), { recursive: true });
      renameSync(runtime.root, root);
      images[s] = { ...runtime, root, hostWorkdir: join(root, runtime.workdir) };
    }
    // Out of reach, not deleted (that takes up to half a minute): a path or link into a build
    // stage now fails as it would in the image. afterAll deletes it.
    renameSync(join(work, 'layers'), join(work, 'removed-build-stages'));
    console.info(
      `production-build: context in ${build.contextMs} ms, ${steps.length} steps in ${Date.now() - started} ms\n${steps.join('\n')}`,
    );
  }, 600_000);

  afterAll(async () => {
    await Promise.all(running.map((p) => p.stop('SIGKILL')));
    // Three copies of a workspace's node_modules: `rm` on its own, so the run does not wait for it.
    spawn('rm', ['-rf', work], { detached: true, stdio: 'ignore' }).unref();
  });

  it('runs outside any repository, with no node_modules above the images, and the pinned pnpm', () => {
    expect(relative(REPO_ROOT, work).startsWith('..')).toBe(true);
    expect(nodeModulesAbove(join(work, 'images'))).toEqual([]);
    const version = spawnSync('pnpm', ['--version'], { cwd: work, encoding: 'utf8', env: hostEnv() });
    expect(version.stdout.trim()).toBe(pinnedPnpm(REPO_ROOT));
  });

  it.each(SERVICES)('%s: the image holds only the deploy output, without dev dependencies', (s) => {
    const { root, hostWorkdir } = images[s];
    expect(readdirSync(root)).toEqual([relative(root, hostWorkdir)]);
    expect(readdirSync(hostWorkdir).sort()).toEqual(['dist', 'node_modules', 'package.json']);
    expect(existsSync(join(hostWorkdir, 'dist/main.js'))).toBe(true);
    expect(lstatSync(join(hostWorkdir, 'node_modules')).isDirectory()).toBe(true);
    const installed = installedPackages(join(hostWorkdir, 'node_modules'));
    expect(installed.length).toBeGreaterThan(0);
    const dev = DEV_ONLY.filter((d) => s !== 'worker' || d !== 'openai');
    expect(installed.filter((p) => dev.some((d) => p === d || p.startsWith(`${d}/`)))).toEqual([]);
    expect(linksLeaving(root)).toEqual([]);
  });

  describe('the three images started as Docker starts them', () => {
    const ports = { api: 0, sim: 0, metrics: 0 };
    const procs = {} as Record<Service, RunningProcess>;
    const keyPrefix = `test-${randomUUID()}`;
    /** What a container gets: PATH (the host's node), the image's ENV, then what compose would set. */
    const env = (s: Service, own: Record<string, string>) => ({
      PATH: process.env.PATH,
      ...images[s].env,
      REDIS_URL: inject('redisUrl'),
      KEY_PREFIX: keyPrefix,
      ...own,
    });
    const own = (): Record<Service, Record<string, string>> => ({
      sim: { SIM_PORT: String(ports.sim), SIM_HOST: '127.0.0.1', SIM_TTFT_MS: '5', SIM_ITL_MS: '2' },
      worker: {
        LLM_BASE_URL: `http://127.0.0.1:${ports.sim}/v1`,
        METRICS_PORT: String(ports.metrics),
        METRICS_HOST: '127.0.0.1',
      },
      api: { PORT: String(ports.api), HOST: '127.0.0.1', AUTH_MODE: 'trusted_headers' },
    });

    beforeAll(async () => {
      [ports.api, ports.sim, ports.metrics] = await Promise.all([freePort(), freePort(), freePort()]);
      for (const s of ['sim', 'worker', 'api'] as const) {
        const [cmd, ...args] = images[s].command;
        const p = startProcess(s, cmd!, args, {
          cwd: images[s].hostWorkdir,
          env: env(s, own()[s]),
          inheritEnv: false,
        });
        running.push(p);
        procs[s] = p;
      }
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

    it.each([
      ['api', () => `http://127.0.0.1:${ports.api}/livez`],
      ['worker', () => `http://127.0.0.1:${ports.metrics}/health`],
      ['sim', () => `http://127.0.0.1:${ports.sim}/health`],
    ] as const)('%s: its liveness endpoint answers 200', async (_s, url) => {
      await expect
        .poll(async () => (await fetch(url()).catch(() => undefined))?.status, { timeout: 10_000 })
        .toBe(200);
    });

    it('stream a chat: api → Redis → worker → simulator, all from the images', async () => {
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
      const hc = images[s].meta.HEALTHCHECK?.exec;
      expect(hc).toBeDefined();
      const [cmd, ...args] = hc!;
      const port: Record<string, string> = {
        api: { PORT: String(ports.api) },
        worker: { METRICS_PORT: String(ports.metrics) },
        sim: { SIM_PORT: String(ports.sim) },
      }[s];
      const check = startProcess(`${s}-healthcheck`, cmd!, args, {
        cwd: images[s].hostWorkdir,
        env: env(s, port),
        inheritEnv: false,
      });
      expect(await check.exited).toBe(0);
    });

    it.each(SERVICES)('%s: SIGTERM ends the process with exit code 0', async (s) => {
      expect(await procs[s].stop('SIGTERM')).toBe(0);
    });
  });
});
