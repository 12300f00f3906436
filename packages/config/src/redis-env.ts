import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { bool } from './fields.ts';

/**
 * Where every process finds Redis, from the environment, in one of the forms a deployment runs
 * (docs/configuration.md, "Redis"):
 *
 * - `REDIS_URL` (default `redis://127.0.0.1:6379`): one primary; `rediss://` for TLS.
 * - `REDIS_SENTINELS=host:port,…` + `REDIS_SENTINEL_NAME` (default `mymaster`): Redis Sentinel,
 *   which the connections follow through a failover.
 *
 * - `REDIS_CLUSTER_NODES=host:port,…`: Redis Cluster (some of its masters; the rest are found).
 *   The keys then carry the hash tags of a Cluster (packages/redis keys.ts), and job channels are
 *   sharded.
 *
 * `REDIS_USERNAME`, `REDIS_PASSWORD` and the `REDIS_TLS*` settings apply to every node, the
 * sentinels included. A mix of forms is refused.
 */
export interface HostPort {
  host: string;
  port: number;
}

export interface RedisTls {
  /** PEM contents, read once at start (REDIS_TLS_CA_FILE, …). */
  ca?: string;
  cert?: string;
  key?: string;
}

export type RedisTarget =
  | { mode: 'single'; url: string; username?: string; password?: string; tls?: RedisTls }
  | {
      mode: 'sentinel';
      sentinels: HostPort[];
      name: string;
      username?: string;
      password?: string;
      tls?: RedisTls;
    }
  | { mode: 'cluster'; nodes: HostPort[]; username?: string; password?: string; tls?: RedisTls };

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

const hostPorts = z
  .string()
  .transform((s, ctx) => {
    const out: HostPort[] = [];
    for (const item of s.split(',').map((x) => x.trim())) {
      if (item === '') continue;
      const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(item);
      const port = m ? Number(m[2]) : Number.NaN;
      if (!m || port < 1 || port > 65535) {
        ctx.addIssue({ code: 'custom', message: `"${item}" is not host:port` });
        return z.NEVER;
      }
      out.push({ host: m[1]!.replace(/^\[|\]$/g, ''), port });
    }
    if (out.length === 0) ctx.addIssue({ code: 'custom', message: 'list at least one host:port' });
    return out;
  })
  .optional();

/** The Redis fields every process's env schema spreads into its own. */
export const redisEnvFields = {
  REDIS_URL: z
    .string()
    .refine((s) => /^rediss?:\/\//.test(s), 'must start with redis:// or rediss://')
    .optional(),
  REDIS_SENTINELS: hostPorts,
  REDIS_SENTINEL_NAME: z.string().min(1).default('mymaster'),
  REDIS_CLUSTER_NODES: hostPorts,
  REDIS_USERNAME: z.string().optional(),
  REDIS_PASSWORD: z.string().optional(),
  /** TLS to a Sentinel deployment or a Cluster (for a single primary, `rediss://` says it). */
  REDIS_TLS: bool(false),
  REDIS_TLS_CA_FILE: z.string().optional(),
  REDIS_TLS_CERT_FILE: z.string().optional(),
  REDIS_TLS_KEY_FILE: z.string().optional(),
};

type RedisEnvIn = z.infer<z.ZodObject<typeof redisEnvFields>>;

/**
 * The parsed Redis fields as the variables that give them again (hosts as `host:port,…`, TLS as
 * `1`), for a process that hands its own Redis to another (pnpm start's dev-state file). Only the
 * fields that say something: REDIS_SENTINEL_NAME with REDIS_SENTINELS, REDIS_TLS when on.
 */
export function redisEnvVars(env: RedisEnvIn): Record<string, string> {
  const hosts = (list: HostPort[]) =>
    list.map((h) => `${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port}`).join(',');
  const vars: Record<string, string | undefined> = {
    REDIS_URL: env.REDIS_URL,
    REDIS_SENTINELS: env.REDIS_SENTINELS && hosts(env.REDIS_SENTINELS),
    REDIS_SENTINEL_NAME: env.REDIS_SENTINELS && env.REDIS_SENTINEL_NAME,
    REDIS_CLUSTER_NODES: env.REDIS_CLUSTER_NODES && hosts(env.REDIS_CLUSTER_NODES),
    REDIS_USERNAME: env.REDIS_USERNAME,
    REDIS_PASSWORD: env.REDIS_PASSWORD,
    REDIS_TLS: env.REDIS_TLS ? '1' : undefined,
    REDIS_TLS_CA_FILE: env.REDIS_TLS_CA_FILE,
    REDIS_TLS_CERT_FILE: env.REDIS_TLS_CERT_FILE,
    REDIS_TLS_KEY_FILE: env.REDIS_TLS_KEY_FILE,
  } satisfies Record<keyof RedisEnvIn, string | undefined>;
  return Object.fromEntries(Object.entries(vars).filter((e): e is [string, string] => e[1] !== undefined));
}

/**
 * The connection target of a parsed env, or an issue on `ctx` (in a schema's transform) for a mix
 * of forms, a Cluster, or a TLS file that cannot be read. `REDIS_URL` comes back defaulted.
 */
export function redisTargetOf(env: RedisEnvIn, ctx: z.RefinementCtx): RedisTarget {
  const fail = (path: string, message: string): RedisTarget => {
    ctx.addIssue({ code: 'custom', path: [path], message });
    return { mode: 'single', url: DEFAULT_REDIS_URL };
  };
  const forms = (['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'] as const).filter(
    (k) => env[k] !== undefined,
  );
  if (forms.length > 1) return fail(forms[1]!, `set one of ${forms.join(', ')}, not several`);
  const files: [keyof RedisTls, string | undefined, string][] = [
    ['ca', env.REDIS_TLS_CA_FILE, 'REDIS_TLS_CA_FILE'],
    ['cert', env.REDIS_TLS_CERT_FILE, 'REDIS_TLS_CERT_FILE'],
    ['key', env.REDIS_TLS_KEY_FILE, 'REDIS_TLS_KEY_FILE'],
  ];
  const tls: RedisTls = {};
  for (const [field, path, name] of files) {
    if (path === undefined) continue;
    try {
      tls[field] = readFileSync(path, 'utf8');
    } catch (err) {
      return fail(name, `cannot read ${path}: ${(err as Error).message}`);
    }
  }
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    return fail(
      'REDIS_TLS_CERT_FILE',
      'a client certificate needs both REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE',
    );
  }
  const auth = {
    ...(env.REDIS_USERNAME !== undefined && { username: env.REDIS_USERNAME }),
    ...(env.REDIS_PASSWORD !== undefined && { password: env.REDIS_PASSWORD }),
  };
  const secure = env.REDIS_TLS || Object.keys(tls).length > 0;
  if (env.REDIS_CLUSTER_NODES !== undefined) {
    return { mode: 'cluster', nodes: env.REDIS_CLUSTER_NODES, ...auth, ...(secure && { tls }) };
  }
  if (env.REDIS_SENTINELS !== undefined) {
    return {
      mode: 'sentinel',
      sentinels: env.REDIS_SENTINELS,
      name: env.REDIS_SENTINEL_NAME,
      ...auth,
      ...(secure && { tls }),
    };
  }
  const url = env.REDIS_URL ?? DEFAULT_REDIS_URL;
  if (env.REDIS_TLS && !url.startsWith('rediss://')) {
    return fail('REDIS_TLS', 'for a single primary, say TLS with a rediss:// REDIS_URL');
  }
  return { mode: 'single', url, ...auth, ...(url.startsWith('rediss://') && { tls }) };
}

/** Where a target points, for log lines and messages (never the password). */
export function describeRedisTarget(t: RedisTarget): string {
  if (t.mode === 'cluster') return `cluster via ${t.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  if (t.mode === 'sentinel') {
    return `sentinel ${t.name} via ${t.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}`;
  }
  try {
    const u = new URL(t.url);
    u.password = '';
    u.username = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return t.url;
  }
}
