/**
 * The paths the latency and throughput scenarios measure side by side, in one run, against one
 * simulator: the simulator directly, nginx in front of it (the floor of any proxy), Portkey's
 * gateway and LiteLLM's proxy in front of it (the peers), and our gateway on its OpenAI route and
 * on `/chat`. Each is a load-generator {@link Target}; a peer that cannot run here (no nginx, no
 * LiteLLM venv) is a row saying why.
 */
import { DEFAULT_MODEL } from '@llmgw/config';
import { openAITarget, runStreams, type StreamSample, seedTarget, type Target } from './load.ts';
import {
  type LitellmVenv,
  litellmPinnedVersion,
  prepareLitellm,
  type RunningLitellm,
  startLitellm,
} from './peers/litellm.ts';
import { nginxAvailable, type RunningNginx, startNginx } from './peers/nginx.ts';
import { portkeyHeaders, portkeyVersion, type RunningPortkey, startPortkey } from './peers/portkey.ts';
import { type CpuUse, measureCpu } from './probes.ts';
import {
  type BenchStack,
  type BenchStackOptions,
  benchHeaders,
  processPids,
  startBenchStack,
} from './stack.ts';

export type PathName = 'direct' | 'nginx' | 'portkey' | 'litellm' | 'gatewayV1' | 'gatewayChat';

/** The gateway's paths and the route each measures, in table order (for the targets table). */
export const GATEWAY_ROUTES = { gatewayV1: '/v1/chat/completions', gatewayChat: '/chat' } as const;
export type GatewayPathName = keyof typeof GATEWAY_ROUTES;
export const GATEWAY_PATHS = Object.keys(GATEWAY_ROUTES) as GatewayPathName[];

export interface BenchPath {
  name: PathName;
  /** Its row in the tables. */
  label: string;
  /** Its row of differences to the direct one ("added by …"). */
  vsDirect: string;
  target?: Target;
  /** Why it is not measured in this run (then no target). */
  skipped?: string;
}

/** What one request asks for, the same on every path (each in its own wire format). */
export type RequestFor = (i: number) => { messages: { role: string; content: string }[]; max_tokens: number };

export interface PeeredStack {
  stack: BenchStack;
  paths: BenchPath[];
  /** Every process to measure CPU of: the stack's, nginx's worker, Portkey, LiteLLM's. */
  pids: Record<string, number | number[] | undefined>;
  close(): Promise<void>;
}

/**
 * The stack of a scenario's paths: the simulator's pace and length, and as many simulator slots
 * and worker slots as streams run at once (at least 8).
 */
export function simulatedStack(cfg: {
  ttftMs: number;
  itlMs: number;
  tokens: number;
  concurrency: number;
}): BenchStackOptions {
  const slots = String(Math.max(cfg.concurrency, 8));
  return {
    sim: {
      SIM_TTFT_MS: String(cfg.ttftMs),
      SIM_ITL_MS: String(cfg.itlMs),
      SIM_MAX_NUM_SEQS: slots,
      SIM_OUTPUT_TOKENS: String(cfg.tokens),
    },
    worker: { WORKER_CONCURRENCY: slots },
  };
}

/** LiteLLM in front of the simulator, or why it is not (it failed to start: the run goes on). */
async function startLitellmPeer(simUrl: string): Promise<RunningLitellm | { skipped: string }> {
  // Made (or found) once per run by bench/src/run.ts; found as it is when a scenario runs alone.
  const venv: LitellmVenv = await prepareLitellm({ quick: true });
  if (!venv.ok) return { skipped: venv.skipped };
  try {
    return await startLitellm(venv, DEFAULT_MODEL, simUrl);
  } catch (err) {
    console.error(`[bench] LiteLLM did not start: ${(err as Error).message}`);
    return { skipped: `skipped: LiteLLM did not start (${(err as Error).message.split('\n')[0]})` };
  }
}

/** The bench stack with nginx, Portkey and LiteLLM in front of its simulator; paths in table order. */
export async function startPeeredStack(opts: BenchStackOptions, request: RequestFor): Promise<PeeredStack> {
  const [stackStarted, portkeyStarted] = await Promise.allSettled([startBenchStack(opts), startPortkey()]);
  const stack = stackStarted.status === 'fulfilled' ? stackStarted.value : undefined;
  const portkey = portkeyStarted.status === 'fulfilled' ? portkeyStarted.value : undefined;
  let nginx: RunningNginx | undefined;
  let litellm: RunningLitellm | { skipped: string } | undefined;
  const close = async () => {
    await Promise.all([
      nginx?.close(),
      portkey?.close(),
      litellm && 'close' in litellm ? litellm.close() : undefined,
      stack?.close(),
    ]);
  };
  try {
    if (stackStarted.status === 'rejected') throw stackStarted.reason;
    if (portkeyStarted.status === 'rejected') throw portkeyStarted.reason;
    // Both need the simulator's address; LiteLLM's start (Python's imports) is the long one.
    const [nginxStarted, litellmStarted] = await Promise.allSettled([
      nginxAvailable() ? startNginx(stack!.simUrl) : undefined,
      startLitellmPeer(stack!.simUrl),
    ]);
    if (nginxStarted.status === 'fulfilled') nginx = nginxStarted.value;
    if (litellmStarted.status === 'fulfilled') litellm = litellmStarted.value;
    if (nginxStarted.status === 'rejected') throw nginxStarted.reason;
    if (litellmStarted.status === 'rejected') throw litellmStarted.reason;
  } catch (err) {
    await close();
    throw err;
  }
  const litellmRunning = litellm && 'close' in litellm ? litellm : undefined;
  return {
    stack: stack!,
    paths: benchPaths(stack!, nginx, portkey!, litellm!, request),
    pids: {
      ...processPids(stack!),
      nginx: nginx?.pid,
      portkey: portkey!.pid,
      litellm: litellmRunning?.pids,
    },
    close,
  };
}

function benchPaths(
  stack: BenchStack,
  nginx: RunningNginx | undefined,
  portkey: RunningPortkey,
  litellm: RunningLitellm | { skipped: string },
  request: RequestFor,
): BenchPath[] {
  const openAIBody = (i: number) => ({ model: DEFAULT_MODEL, ...request(i), stream: true });
  const chatCompletions = (base: string) => `${base}/v1/chat/completions`;
  const api = stack.apiUrls[0]!;
  return [
    {
      name: 'direct',
      label: 'direct (simulator)',
      vsDirect: '',
      target: openAITarget(chatCompletions(stack.simUrl), openAIBody),
    },
    {
      name: 'nginx',
      label: 'nginx',
      vsDirect: 'added by nginx',
      ...(nginx
        ? { target: openAITarget(chatCompletions(nginx.url), openAIBody) }
        : { skipped: 'skipped: nginx not installed' }),
    },
    {
      name: 'portkey',
      label: `Portkey ${portkeyVersion()}`,
      vsDirect: 'added by Portkey',
      target: openAITarget(chatCompletions(portkey.url), openAIBody, () => portkeyHeaders(stack.simUrl)),
    },
    {
      name: 'litellm',
      vsDirect: 'added by LiteLLM',
      ...('close' in litellm
        ? {
            label: `LiteLLM ${litellm.version} (${litellm.workers} worker${litellm.workers > 1 ? 's' : ''})`,
            target: openAITarget(chatCompletions(litellm.url), openAIBody),
          }
        : { label: `LiteLLM ${litellmPinnedVersion()}`, skipped: litellm.skipped }),
    },
    {
      name: 'gatewayV1',
      label: 'gateway (/v1/chat/completions)',
      vsDirect: 'added by the gateway (/v1/chat/completions)',
      target: openAITarget(chatCompletions(api), openAIBody, benchHeaders),
    },
    {
      name: 'gatewayChat',
      label: 'gateway (/chat)',
      vsDirect: 'added by the gateway (/chat)',
      target: seedTarget(`${api}/chat`, request, benchHeaders),
    },
  ];
}

export interface PathRun {
  path: BenchPath;
  samples: StreamSample[];
  wallMs: number;
  /** CPU of every process while it ran (the concurrent runs only). */
  cpu?: { use: CpuUse[]; wallS: number };
}

/**
 * Runs each measured path in turn, `total(path)` streams `concurrency` at a time, with the CPU of
 * every process (`cpu: true`) or without (the one-at-a-time runs). Skipped paths: no samples.
 */
export async function runPaths(
  peered: PeeredStack,
  total: (p: BenchPath) => number,
  concurrency: number,
  { cpu }: { cpu: boolean },
): Promise<PathRun[]> {
  const runs: PathRun[] = [];
  for (const path of peered.paths) {
    if (!path.target) {
      runs.push({ path, samples: [], wallMs: 0 });
      continue;
    }
    const target = path.target;
    const phase = () => runStreams(target, total(path), concurrency);
    if (cpu) {
      const { result, use, wallS } = await measureCpu(peered.pids, peered.stack.redisUrl, phase);
      runs.push({ path, ...result, cpu: { use, wallS } });
    } else runs.push({ path, ...(await phase()) });
  }
  return runs;
}
