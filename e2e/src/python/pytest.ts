import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DEFAULT_MODEL } from '@llmgw/config';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { type CompatStack, GHOST_MODEL, REASONING_MODEL, startCompatStack } from '../stack/compat.ts';

const run = promisify(execFile);

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
/** pytest's rootdir (pytest.ini, conftest.py); node ids are relative to it. */
const PY_DIR = join(ROOT, 'e2e/python');
const REQUIREMENTS = join(PY_DIR, 'requirements.txt');
const VENV = join(ROOT, '.venv-clients');
const PYTHON = join(VENV, 'bin/python');

/** pip install of the pinned clients on a fresh machine: a minute or so, more on a slow mirror. */
const VENV_TIMEOUT_MS = 600_000;
/** The whole pytest run (the suite itself aims for well under 90 s). */
const PYTEST_TIMEOUT_MS = 300_000;

/** What every pytest process gets, on top of the caller's environment. */
const PY_ENV = {
  // No writes into the checkout: no __pycache__ beside the tests (and -p no:cacheprovider).
  PYTHONDONTWRITEBYTECODE: '1',
  PYTHONUNBUFFERED: '1',
  // LiteLLM fetches its model price map from the internet at import unless told to use its own copy.
  LITELLM_LOCAL_MODEL_COST_MAP: 'True',
  // LiteLLM's token counter fetches a Llama tokenizer from the Hugging Face hub for a model named
  // like ours (`sim-llama-3-8b`), five retries over ~25 s offline; offline it falls back to tiktoken.
  HF_HUB_OFFLINE: '1',
};

/** Whether the process that wrote `lock`'s pid still runs (true while the pid is not written yet). */
function holderAlive(lock: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(join(lock, 'pid'), 'utf8'));
  } catch {
    return true;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `fn` holding `.venv-clients.lock`. The two runner files load at the same time: the second
 * waits for the first's install and collection, then finds both done.
 */
async function withVenvLock<T>(fn: () => Promise<T>): Promise<T> {
  const lock = `${VENV}.lock`;
  const deadline = Date.now() + VENV_TIMEOUT_MS;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch {
      // A lock left by a killed run: its holder is gone, or it is older than any install.
      if (
        !holderAlive(lock) ||
        Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? 0) > VENV_TIMEOUT_MS
      )
        rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`${lock} held for over ${VENV_TIMEOUT_MS} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * Makes `.venv-clients` from e2e/python/requirements.txt if it is missing or stale
 * (scripts/python-venv.sh; a no-op when the requirements are installed already).
 */
async function ensureClientsVenv(): Promise<void> {
  await run('bash', [join(ROOT, 'scripts/python-venv.sh'), REQUIREMENTS, VENV], {
    cwd: ROOT,
    timeout: VENV_TIMEOUT_MS,
    maxBuffer: 16 * 1024 * 1024,
  });
}

const pytestArgs = (files: string[]) => ['-m', 'pytest', '-p', 'no:cacheprovider', ...files];

/** Every file under `dir`, sorted. */
const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]))
    .sort();

/**
 * The node ids of `files`, collected by pytest (`--collect-only -q`) once per state of e2e/python
 * and kept in the venv: collecting imports every client (seconds of CPU), and both runner files
 * collect the same tests. A failed collection is not kept: its output is returned.
 */
async function collectOnce(files: string[], env: Record<string, string>): Promise<string[] | string> {
  const hash = createHash('sha256').update(JSON.stringify([files, process.env.PYTEST_ADDOPTS ?? '']));
  for (const f of filesUnder(PY_DIR)) hash.update(f).update(readFileSync(f));
  const cached = join(VENV, `.collected-${hash.digest('hex').slice(0, 16)}.json`);
  if (existsSync(cached)) return JSON.parse(readFileSync(cached, 'utf8')) as string[];
  const ids = await collect(files, env);
  if (typeof ids !== 'string') {
    for (const old of readdirSync(VENV).filter((f) => f.startsWith('.collected-'))) rmSync(join(VENV, old));
    writeFileSync(cached, JSON.stringify(ids));
  }
  return ids;
}

/** The pytest node ids of `files` (`pytest --collect-only -q`), or the collection's output if it fails. */
async function collect(files: string[], env: Record<string, string>): Promise<string[] | string> {
  try {
    const { stdout } = await run(PYTHON, [...pytestArgs(files), '--collect-only', '-q'], {
      cwd: PY_DIR,
      env: { ...process.env, ...PY_ENV, ...env },
      timeout: 120_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout.split('\n').filter((line) => line.includes('::'));
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    return `${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`;
  }
}

interface Outcome {
  status: 'passed' | 'failed' | 'skipped';
  /** pytest's report: the failure with its traceback, the skip reason, and the test's captured output. */
  detail: string;
}

const xmlText = (s: string) =>
  s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n)))
    .replace(/&#x([0-9a-f]+);/gi, (_, n: string) => String.fromCodePoint(Number.parseInt(n, 16)))
    .replace(/&amp;/g, '&');

/** junit `classname` + `name` of a node id: `tests/test_a.py::Cls::test_b[x]` → `tests.test_a.Cls` + `test_b[x]`. */
function junitKey(nodeId: string): string {
  const [path = '', ...rest] = nodeId.split('::');
  const name = rest.pop() ?? '';
  const classname = [path.replace(/\.py$/, '').replaceAll('/', '.'), ...rest].join('.');
  return `${classname}::${name}`;
}

/** pytest's junit XML as outcomes by junitKey. Enough of XML for what pytest writes. */
function parseJunit(xml: string): Map<string, Outcome> {
  const out = new Map<string, Outcome>();
  for (const m of xml.matchAll(/<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const attr = (name: string) => xmlText(new RegExp(`\\b${name}="([^"]*)"`).exec(m[1]!)?.[1] ?? '');
    const body = m[3] ?? '';
    const section = (tag: string) => {
      const s = new RegExp(`<${tag}\\b([^>]*?)(?:/>|>([\\s\\S]*?)</${tag}>)`).exec(body);
      if (!s) return undefined;
      const message = /\bmessage="([^"]*)"/.exec(s[1]!)?.[1];
      return [message && xmlText(message), s[2] && xmlText(s[2])].filter(Boolean).join('\n');
    };
    const failure = section('failure') ?? section('error');
    const skipped = section('skipped');
    // junit_logging=all writes each capture under a header even when it is empty.
    const output = ['system-out', 'system-err']
      .map((tag) => section(tag))
      .filter((s): s is string => !!s?.replace(/^-+ Captured \w+ -+$/gm, '').trim());
    const status = failure !== undefined ? 'failed' : skipped !== undefined ? 'skipped' : 'passed';
    // A failing teardown adds an <error> to a passed test's case; a test may appear once per phase.
    const key = `${attr('classname')}::${attr('name')}`;
    const prev = out.get(key);
    if (prev?.status === 'failed') continue;
    out.set(key, { status, detail: [failure ?? skipped ?? '', ...output].join('\n') });
  }
  return out;
}

/**
 * Serves fresh API keys to the Python tests: `GET /key/<tier>` → the key as text. The error
 * classes need keys of their own (a one-request-a-minute key is spent by one test).
 */
async function serveKeys(stack: CompatStack): Promise<Server> {
  const server = createServer((req, res) => {
    const tier = /^\/key\/(one_rpm|broke|enterprise)$/.exec(req.url ?? '')?.[1] as
      | 'one_rpm'
      | 'broke'
      | 'enterprise'
      | undefined;
    if (!tier) {
      res.writeHead(404).end();
      return;
    }
    stack.keyOf(tier).then(
      (key) => res.writeHead(200, { 'content-type': 'text/plain' }).end(key),
      (e: unknown) => res.writeHead(500).end(String(e)),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

/**
 * Runs the pytest files `files` (relative to e2e/python) against a compat stack whose worker
 * drives `provider`'s wire format: one vitest test per pytest node id, collected when this module
 * loads, each failing with pytest's report and the test's output. pytest runs once, in beforeAll.
 */
export async function pythonSuite(provider: 'openai' | 'anthropic', files: string[]): Promise<void> {
  const staticEnv = {
    LLMGW_BACKEND: provider,
    LLMGW_MODEL: DEFAULT_MODEL,
    LLMGW_REASONING_MODEL: REASONING_MODEL,
    LLMGW_GHOST_MODEL: GHOST_MODEL,
  };
  const ids = await withVenvLock(async () => {
    await ensureClientsVenv();
    return collectOnce(files, staticEnv);
  });

  describe(`Python clients through the gateway, ${provider} backend`, () => {
    if (typeof ids === 'string') {
      it(`pytest collects ${files.join(' ')}`, () => {
        throw new Error(ids);
      });
      return;
    }
    let stack: CompatStack | undefined;
    let keys: Server | undefined;
    let results = new Map<string, Outcome>();
    let ran = '';
    const dir = mkdtempSync(join(tmpdir(), 'llmgw-pytest-'));

    beforeAll(async () => {
      stack = await startCompatStack(provider);
      keys = await serveKeys(stack);
      const env = {
        ...process.env,
        ...PY_ENV,
        ...staticEnv,
        LLMGW_API_URL: stack.apiUrl,
        LLMGW_API_KEY: stack.apiKey,
        LLMGW_SIM_URL: stack.sim!.url,
        LLMGW_KEYS_URL: `http://127.0.0.1:${(keys.address() as AddressInfo).port}`,
      };
      const junit = join(dir, 'junit.xml');
      const started = Date.now();
      const { code, output } = await new Promise<{ code: number | null; output: string }>((done) => {
        const child = spawn(PYTHON, [...pytestArgs(ids), `--junitxml=${junit}`, '-o', 'junit_logging=all'], {
          cwd: PY_DIR,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        child.stdout.on('data', (d: Buffer) => {
          output += d;
        });
        child.stderr.on('data', (d: Buffer) => {
          output += d;
        });
        const timer = setTimeout(() => child.kill('SIGKILL'), PYTEST_TIMEOUT_MS);
        child.on('close', (code) => {
          clearTimeout(timer);
          done({ code, output });
        });
      });
      ran = `pytest exited ${code} after ${Date.now() - started} ms:\n${output.slice(-20_000)}`;
      try {
        results = parseJunit(readFileSync(junit, 'utf8'));
      } catch {
        // No report at all: every test below fails with pytest's own output.
      }
    }, PYTEST_TIMEOUT_MS + 60_000);

    afterAll(async () => {
      await new Promise((r) => (keys ? keys.close(r) : r(undefined)));
      await stack?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    for (const id of ids) {
      it(id, (ctx) => {
        const result = results.get(junitKey(id));
        if (!result) throw new Error(`no result for ${id} in pytest's report\n${ran}`);
        if (result.status === 'skipped') ctx.skip(result.detail);
        if (result.status === 'failed') throw new Error(`${id} failed\n${result.detail}`);
      });
    }
  });
}
