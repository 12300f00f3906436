import { DEFAULT_MODEL, EnvError, logLevel } from '@llmgw/config';
import { z } from 'zod';

export const FAULT_TYPES = ['server_error', 'rate_limit', 'timeout', 'drop', 'bad_request'] as const;
export type FaultType = (typeof FAULT_TYPES)[number];

/** Where reasoning text goes in a chat delta: older vLLM and DeepSeek say `reasoning_content`, newer vLLM `reasoning`. */
export const REASONING_FIELDS = ['reasoning_content', 'reasoning', 'both'] as const;
export type ReasoningField = (typeof REASONING_FIELDS)[number];

const splitCsv = (v: unknown): unknown =>
  typeof v === 'string'
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0)
    : v;

const ms = (def: number) => z.coerce.number().min(0).default(def);

/**
 * Every simulator option. Accepts strings (flags, env) as well as typed values (tests calling
 * `startSimulator`), so one schema validates both.
 */
export const simOptionsSchema = z.object({
  port: z.coerce.number().int().min(0).max(65535).default(8001),
  host: z.string().min(1).default('127.0.0.1'),
  /** Served model names, like vLLM's `--served-model-name`; the first one labels the metrics. */
  models: z.preprocess(splitCsv, z.array(z.string().min(1)).min(1)).default([DEFAULT_MODEL]),
  ttftMs: ms(50),
  itlMs: ms(20),
  ttftJitterMs: ms(0),
  itlJitterMs: ms(0),
  maxNumSeqs: z.coerce.number().int().positive().default(8),
  /** 0 = natural length from the prompt hash (16..256 tokens); N > 0 = every natural length is N. */
  outputTokens: z.coerce.number().int().min(0).default(0),
  maxModelLen: z.coerce.number().int().positive().default(8192),
  failureRate: z.coerce.number().min(0).max(1).default(0),
  failureTypes: z.preprocess(splitCsv, z.array(z.enum(FAULT_TYPES)).min(1)).default([...FAULT_TYPES]),
  /** Reasoning tokens a reasoning model (served name containing `reason`) emits before its answer. */
  reasoningTokens: z.coerce.number().int().min(0).default(8),
  reasoningField: z.enum(REASONING_FIELDS).default('reasoning_content'),
  /**
   * A delta field the gateway does not relay (e.g. `audio`, as OpenAI's audio output sends),
   * added to the first chunk of every chat stream: tests that drops are counted, never silent.
   * Empty: none.
   */
  extraDeltaField: z.string().regex(/^\w*$/).default(''),
  /** Least severe log line written, as in the api and the worker (LOG_LEVEL). */
  logLevel,
});

export type SimOptions = z.output<typeof simOptionsSchema>;

type OptionKey = keyof SimOptions;

/** Command-line flag and environment variable of each option (a flag wins over its variable). */
export const OPTION_SOURCES: Record<OptionKey, { flag: string; env: string }> = {
  port: { flag: '--port', env: 'SIM_PORT' },
  host: { flag: '--host', env: 'SIM_HOST' },
  models: { flag: '--model', env: 'SIM_MODEL' },
  ttftMs: { flag: '--ttft-ms', env: 'SIM_TTFT_MS' },
  itlMs: { flag: '--itl-ms', env: 'SIM_ITL_MS' },
  ttftJitterMs: { flag: '--ttft-jitter-ms', env: 'SIM_TTFT_JITTER_MS' },
  itlJitterMs: { flag: '--itl-jitter-ms', env: 'SIM_ITL_JITTER_MS' },
  maxNumSeqs: { flag: '--max-num-seqs', env: 'SIM_MAX_NUM_SEQS' },
  outputTokens: { flag: '--output-tokens', env: 'SIM_OUTPUT_TOKENS' },
  maxModelLen: { flag: '--max-model-len', env: 'SIM_MAX_MODEL_LEN' },
  failureRate: { flag: '--failure-rate', env: 'SIM_FAILURE_RATE' },
  failureTypes: { flag: '--failure-types', env: 'SIM_FAILURE_TYPES' },
  reasoningTokens: { flag: '--reasoning-tokens', env: 'SIM_REASONING_TOKENS' },
  reasoningField: { flag: '--reasoning-field', env: 'SIM_REASONING_FIELD' },
  extraDeltaField: { flag: '--extra-delta-field', env: 'SIM_EXTRA_DELTA_FIELD' },
  logLevel: { flag: '--log-level', env: 'LOG_LEVEL' },
};

const OPTION_KEYS = Object.keys(OPTION_SOURCES) as OptionKey[];
const KEY_BY_FLAG = new Map(OPTION_KEYS.map((k) => [OPTION_SOURCES[k].flag, k]));

function describeIssues(error: z.ZodError, nameOf: (key: string) => string, input: Record<string, unknown>) {
  return error.issues
    .map((issue) => {
      const key = typeof issue.path[0] === 'string' ? issue.path[0] : undefined;
      const name = key === undefined ? 'options' : nameOf(key);
      const got = key === undefined ? undefined : input[key];
      return `invalid ${name}: ${issue.message}${got === undefined ? '' : ` (got ${JSON.stringify(got)})`}`;
    })
    .join('\n');
}

/** Fills defaults and validates options given in code; throws EnvError naming the bad option. */
export function resolveOptions(partial: Partial<SimOptions> = {}): SimOptions {
  const result = simOptionsSchema.safeParse(partial);
  if (result.success) return result.data;
  throw new EnvError(describeIssues(result.error, (key) => `option ${key}`, partial));
}

/**
 * Reads options from CLI flags (`--ttft-ms 20` or `--ttft-ms=20`) over environment variables.
 * Empty variables count as unset, like `parseEnv` in @llmgw/config. Throws EnvError whose
 * message names the flag or variable at fault.
 */
export function parseOptions(argv: readonly string[], env: Record<string, string | undefined>): SimOptions {
  const input: Record<string, string> = {};
  const fromFlag = new Set<string>();
  for (const key of OPTION_KEYS) {
    const value = env[OPTION_SOURCES[key].env];
    if (value !== undefined && value !== '') input[key] = value;
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    // `pnpm sim -- --ttft-ms 20` may hand the separator through.
    if (arg === '--') continue;
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const key = KEY_BY_FLAG.get(flag);
    if (key === undefined) throw new EnvError(`unknown flag ${arg} (try --help)`);
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined || value === '') throw new EnvError(`flag ${flag} needs a value`);
    input[key] = value;
    fromFlag.add(key);
  }
  const result = simOptionsSchema.safeParse(input);
  if (result.success) return result.data;
  const nameOf = (key: string) => {
    const source = OPTION_SOURCES[key as OptionKey];
    return fromFlag.has(key) ? `flag ${source.flag}` : `environment variable ${source.env}`;
  };
  throw new EnvError(describeIssues(result.error, nameOf, input));
}

export function usage(): string {
  const rows = OPTION_KEYS.map((k) => {
    const { flag, env } = OPTION_SOURCES[k];
    const def = simOptionsSchema.shape[k].parse(undefined);
    return `  ${`${flag} / ${env}`.padEnd(44)} default ${Array.isArray(def) ? def.join(',') : String(def)}`;
  });
  return `usage: sim [flags]\n${rows.join('\n')}\n`;
}
