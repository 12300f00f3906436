/**
 * LiteLLM's proxy (the `litellm[proxy]` pin of bench/requirements-litellm.txt, in the git-ignored
 * `.venv-litellm` that scripts/python-venv.sh makes) as a real process, in front of the simulator
 * as an OpenAI-compatible provider. It is set up to be measured at its best: no database, no
 * master key, no callbacks, no retries, no background health checks, no telemetry, the model cost
 * map read from the package, no Hugging Face tokenizer download (the simulator's model name has
 * "llama-3" in it, which would make LiteLLM fetch one to count a stream's tokens), errors-only
 * logs, no access log, and keep-alive connections kept as long as nginx keeps them. Its uvicorn
 * workers: BENCH_LITELLM_WORKERS, else {@link litellmWorkers}'s default.
 *
 * `pnpm bench` makes or updates the venv first (idempotent: pip runs only when the requirements
 * changed); `--quick` never installs, so that `pnpm test` spends no minutes on pip: without the
 * venv the LiteLLM rows say `skipped: …`, as they do when Python or LiteLLM fails.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, REPO_ROOT, until } from '@llmgw/devkit';
import { childPids, spawnPeer, waitForPeerPort } from './process.ts';

export const LITELLM_REQUIREMENTS = join(REPO_ROOT, 'bench/requirements-litellm.txt');
export const LITELLM_VENV = join(REPO_ROOT, '.venv-litellm');
const VENV_SCRIPT = join(REPO_ROOT, 'scripts/python-venv.sh');

/**
 * uvicorn workers (`--num_workers`), unless BENCH_LITELLM_WORKERS says otherwise: 2 on the 2 cores
 * of the bench machine. LiteLLM is CPU-bound in one process (a core per worker), and 2 carried
 * 0.97–1.7× what 1 did (bench/RESULTS.md): the same when one worker accepts every connection of
 * a burst, as uvicorn's workers share one listening socket and the first awake takes the lot.
 * `--quick` runs 1: it proves the path works, and a second worker doubles the start (13–17 s).
 */
export const litellmWorkers = (quick: boolean): number => {
  const n = Number(process.env.BENCH_LITELLM_WORKERS ?? (quick ? 1 : 2));
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(
      `BENCH_LITELLM_WORKERS must be a whole number ≥ 1 (got ${process.env.BENCH_LITELLM_WORKERS})`,
    );
  }
  return n;
};

/** The version bench/requirements-litellm.txt pins (`litellm[proxy]==X`), for the tables. */
export function litellmPinnedVersion(): string {
  const m = readFileSync(LITELLM_REQUIREMENTS, 'utf8').match(/^litellm\[proxy\]==(\S+)/m);
  return m?.[1] ?? 'unknown';
}

/** The version installed in the venv (its dist-info), if any. */
function installedVersion(): string | undefined {
  const lib = join(LITELLM_VENV, 'lib');
  if (!existsSync(lib)) return undefined;
  for (const py of readdirSync(lib)) {
    const site = join(lib, py, 'site-packages');
    if (!existsSync(site)) continue;
    const info = readdirSync(site).find((f) => /^litellm-[\d.]+[^-]*\.dist-info$/.test(f));
    if (info) return info.slice('litellm-'.length, -'.dist-info'.length);
  }
  return undefined;
}

export type LitellmVenv =
  | { ok: true; python: string; version: string; workers: number }
  | { ok: false; skipped: string };

let prepared: Promise<LitellmVenv> | undefined;

/** Runs scripts/python-venv.sh; resolves with its output's last lines when it fails. */
function runVenvScript(): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = spawn('bash', [VENV_SCRIPT, LITELLM_REQUIREMENTS, LITELLM_VENV], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const keep = (c: Buffer) => {
      out = (out + c.toString()).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', (err) => resolve(err.message));
    child.once('close', (code) =>
      resolve(code === 0 ? undefined : out.trim().split('\n').slice(-3).join(' / ') || `exit code ${code}`),
    );
  });
}

/**
 * The venv to run LiteLLM from, and its workers: made or updated by scripts/python-venv.sh, found
 * as it is with `quick`. Once per run (both peered scenarios use the first answer).
 */
export function prepareLitellm({ quick }: { quick: boolean }): Promise<LitellmVenv> {
  prepared ??= (async (): Promise<LitellmVenv> => {
    const bin = join(LITELLM_VENV, 'bin/litellm');
    let workers: number;
    try {
      workers = litellmWorkers(quick);
    } catch (err) {
      return { ok: false, skipped: `skipped: ${(err as Error).message}` };
    }
    if (!quick) {
      if (!existsSync(join(LITELLM_VENV, '.requirements.sha256'))) {
        console.error('[bench] installing LiteLLM into .venv-litellm (scripts/python-venv.sh, once)');
      }
      const failed = await runVenvScript();
      if (failed) return { ok: false, skipped: `skipped: Python venv failed (${failed})` };
    } else if (!existsSync(bin)) {
      return {
        ok: false,
        skipped: 'skipped: no .venv-litellm (--quick does not install it; pnpm bench does)',
      };
    }
    const version = installedVersion();
    if (!existsSync(bin) || !version) return { ok: false, skipped: 'skipped: LiteLLM not in .venv-litellm' };
    return { ok: true, python: join(LITELLM_VENV, 'bin/python'), version, workers };
  })();
  return prepared;
}

export interface RunningLitellm {
  url: string;
  version: string;
  workers: number;
  /** Every process serving it: the uvicorn supervisor (with 2+ workers) and its workers. */
  pids: number[];
  close(): Promise<void>;
}

/** The proxy's config: one model, the simulator's, as an OpenAI-compatible deployment. */
export function litellmConfig(model: string, simUrl: string): string {
  return `model_list:
  - model_name: ${model}
    litellm_params:
      model: openai/${model}
      api_base: ${simUrl}/v1
      api_key: bench
litellm_settings:
  num_retries: 0
  request_timeout: 600
  telemetry: false
  set_verbose: false
  json_logs: false
  callbacks: []
  success_callback: []
  failure_callback: []
  disable_hf_tokenizer_download: true
router_settings:
  num_retries: 0
general_settings:
  background_health_checks: false
  disable_spend_logs: true
`;
}

/**
 * uvicorn's logging: its startup lines (which tell when each worker is up), no access log (the
 * direct row writes none either).
 */
const LOG_CONFIG = {
  version: 1,
  disable_existing_loggers: false,
  formatters: { plain: { format: '%(levelname)s: %(message)s' } },
  handlers: { stderr: { class: 'logging.StreamHandler', formatter: 'plain', stream: 'ext://sys.stderr' } },
  loggers: {
    uvicorn: { handlers: ['stderr'], level: 'INFO', propagate: false },
    'uvicorn.error': { handlers: ['stderr'], level: 'INFO', propagate: false },
    'uvicorn.access': { handlers: [], level: 'CRITICAL', propagate: false },
  },
};

/** The environment LiteLLM runs with: nothing of a real deployment (a database, a key, a Redis). */
const LITELLM_ENV: Record<string, string | undefined> = {
  LITELLM_LOG: 'ERROR',
  LITELLM_LOCAL_MODEL_COST_MAP: 'True',
  // Not DEV: DEV reads a .env from the working directory.
  LITELLM_MODE: 'PRODUCTION',
  LITELLM_DONT_SHOW_FEEDBACK_BOX: 'True',
  HF_HUB_OFFLINE: '1',
  // FastAPI's OpenTelemetry middleware: nothing to export to.
  OTEL_SDK_DISABLED: 'true',
  DATABASE_URL: undefined,
  DIRECT_URL: undefined,
  LITELLM_MASTER_KEY: undefined,
  REDIS_URL: undefined,
  REDIS_HOST: undefined,
  REDIS_PORT: undefined,
  REDIS_PASSWORD: undefined,
};

/** The process and its descendants (uvicorn's workers are its children). */
function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...childPids(out[i]!));
  return out;
}

const STOP_GRACE_MS = 10_000;

/**
 * `litellm …` as its console script runs it (`run_server`, the CLI), from `python -c`. With 2+
 * workers uvicorn starts each by multiprocessing's spawn, which first imports the parent's main
 * module again: the console script imports all of LiteLLM at its top, seconds of CPU before the
 * worker answers the supervisor's health ping, and the supervisor kills a worker that has not
 * answered in 5 s. On 2 busy cores that is every worker, forever. A `-c` program is not
 * imported again; the worker imports the app after it started answering.
 */
const LAUNCHER =
  'import sys; from litellm import run_server; sys.argv[0] = "litellm"; sys.exit(run_server())';

/**
 * LiteLLM from `venv` in front of the simulator at `simUrl` (no `/v1`), serving `model`, on a
 * free port of 127.0.0.1: resolves once each of its workers finished its startup.
 */
export async function startLitellm(
  venv: { python: string; version: string; workers: number },
  model: string,
  simUrl: string,
): Promise<RunningLitellm> {
  const dir = mkdtempSync(join(tmpdir(), 'llmgw-bench-litellm-'));
  const port = await freePort();
  const { workers } = venv;
  writeFileSync(join(dir, 'config.yaml'), litellmConfig(model, simUrl));
  writeFileSync(join(dir, 'log.json'), JSON.stringify(LOG_CONFIG));
  const peer = spawnPeer(
    'litellm',
    venv.python,
    [
      '-c',
      LAUNCHER,
      '--config',
      join(dir, 'config.yaml'),
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      '--num_workers',
      String(workers),
      '--telemetry',
      'False',
      // uvicorn's default is 5 s: a client reusing a connection as it closes it gets a reset, and
      // on a loaded machine that happened a few times per run (nginx's is 65 s).
      '--keepalive_timeout',
      '75',
      '--log_config',
      join(dir, 'log.json'),
    ],
    LITELLM_ENV,
    { cwd: dir },
  );
  let started = 0;
  const count = (c: Buffer) => {
    started += c.toString().split('Application startup complete').length - 1;
  };
  peer.child.stdout!.on('data', count);
  peer.child.stderr!.on('data', count);
  const master = peer.child.pid;
  const close = async () => {
    const tree = master === undefined ? [] : processTree(master);
    const timer = setTimeout(() => {
      for (const pid of tree) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }, STOP_GRACE_MS);
    await peer.stop('SIGTERM');
    clearTimeout(timer);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // Python's imports: several seconds of CPU on a machine that is starting the stack too.
    await waitForPeerPort(peer, port, 90_000);
    const up = await until(() => started >= workers || peer.child.exitCode !== null, 90_000, 50);
    if (!up || peer.child.exitCode !== null) {
      throw new Error(`litellm: ${started} of ${workers} workers started:\n${peer.tail()}`);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    version: venv.version,
    workers,
    pids: master === undefined ? [] : processTree(master),
    close,
  };
}
