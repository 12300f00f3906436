import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseWorkerEnv, WorkerEnvSchema } from '@llmgw/worker';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ApiEnvSchema } from '../../apps/api/src/env.ts';
import { OPTION_SOURCES } from '../../apps/sim/src/options.ts';
import { REPO_ROOT, readDockerfile } from './support.ts';

/** `docker compose` (v2 plugin) or `docker-compose` (v1, Debian's package), whichever works here. */
function composeCommand(): string[] | undefined {
  for (const cmd of [['docker', 'compose'], ['docker-compose']]) {
    const r = spawnSync(cmd[0]!, [...cmd.slice(1), 'version'], { stdio: 'ignore' });
    if (r.status === 0) return cmd;
  }
  return undefined;
}

const compose = composeCommand();
if (!compose)
  console.warn(
    'deploy/test/compose.test.ts: skipped, neither `docker compose` nor `docker-compose` runs here ' +
      '(apt-get install docker-compose; .ci/run installs it)',
  );

interface ComposeService {
  image?: string;
  build?: { dockerfile?: string };
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, string | null>;
  deploy?: { replicas?: number; resources?: { reservations?: { devices?: unknown[] } } };
  depends_on?: Record<string, { condition?: string }>;
  healthcheck?: { test?: string[] };
  profiles?: string[];
  ports?: unknown[];
  shm_size?: string | number;
  stop_grace_period?: string;
  volumes?: (string | { source?: string; target?: string })[];
}

const resolved = new Map<string, { services: Record<string, ComposeService> }>();

/** The file as compose resolves it (variables, anchors, defaults), with no .env present. */
function resolvedConfig(extra: string[] = []): { services: Record<string, ComposeService> } {
  const key = extra.join(' ');
  const cached = resolved.get(key);
  if (cached) return cached;
  const r = spawnSync(compose![0]!, [...compose!.slice(1), '-f', 'docker-compose.yml', ...extra, 'config'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { ...process.env, COMPOSE_PROJECT_NAME: 'llmgw-test' },
    timeout: 30_000,
  });
  expect(r.stderr).not.toMatch(/error|invalid/i);
  expect(r.status).toBe(0);
  const config = parse(r.stdout) as { services: Record<string, ComposeService> };
  resolved.set(key, config);
  return config;
}

/** The variables a zod env schema reads: the keys of the object under its transforms and refinements. */
function schemaVariables(schema: unknown): string[] {
  let s = schema as { shape?: Record<string, unknown>; in?: unknown } | undefined;
  while (s && s.shape === undefined) s = s.in as typeof s;
  if (!s?.shape) throw new Error('no object schema under the transforms');
  return Object.keys(s.shape);
}

/** Who reads what: each image's process and the variables its schema knows. */
const SCHEMAS: Record<string, { dockerfile: string; variables: Set<string> }> = {
  api: { dockerfile: 'Dockerfile.api', variables: new Set(schemaVariables(ApiEnvSchema)) },
  worker: { dockerfile: 'Dockerfile.worker', variables: new Set(schemaVariables(WorkerEnvSchema)) },
  sim: { dockerfile: 'Dockerfile.sim', variables: new Set(Object.values(OPTION_SOURCES).map((o) => o.env)) },
};

/** `NAME=value` lines of .env.example, in order. */
const exampleVariables = (): [string, string][] =>
  [...readFileSync(join(REPO_ROOT, '.env.example'), 'utf8').matchAll(/^(\w+)=(.*)$/gm)].map((m) => [
    m[1]!,
    m[2]!,
  ]);

/** Variables compose itself reads: interpolated in docker-compose.yml, or its own settings. */
const composeVariables = () =>
  new Set([
    'COMPOSE_PROJECT_NAME',
    ...[...readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8').matchAll(/\$\{(\w+)/g)].map(
      (m) => m[1]!,
    ),
  ]);

const seconds = (d: string | undefined) => {
  const m = /^(?:(\d+)m)?(?:(\d+)s)?$/.exec(d ?? '');
  return m ? Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0) : Number.NaN;
};
const volumeTargets = (s: ComposeService) =>
  (s.volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':')[1] : v.target));
const volumeSources = (s: ComposeService) =>
  (s.volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':')[0] : v.source));

describe.skipIf(!compose)('docker-compose.yml', () => {
  it('is accepted by `compose config`, with and without the gpu profile', () => {
    const base = resolvedConfig();
    expect(Object.keys(base.services).sort()).toEqual(
      expect.arrayContaining(['api1', 'api2', 'grafana', 'nginx', 'prometheus', 'redis', 'sim', 'worker']),
    );
    const gpu = resolvedConfig(['--profile', 'gpu']);
    expect(gpu.services.vllm?.profiles).toEqual(['gpu']);
  });

  it('deploy/compose/sentinel.yml: a replica and three sentinels, and every api and worker finds Redis through them', () => {
    const { services } = resolvedConfig(['-f', 'deploy/compose/sentinel.yml']);
    expect(services['redis-replica']?.command).toEqual(
      expect.arrayContaining(['--replicaof', 'redis', '6379']),
    );
    expect(services['redis-replica']?.command).toEqual(
      expect.arrayContaining(['--maxmemory-policy', 'noeviction']),
    );
    for (const name of ['sentinel1', 'sentinel2', 'sentinel3']) {
      expect(String(services[name]?.entrypoint)).toContain('sentinel monitor llmgw redis 6379 2');
    }
    for (const name of ['api1', 'api2', 'worker']) {
      const env = Object.fromEntries(
        Object.entries(services[name]!.environment ?? {}).map(([k, v]) => [k, v ?? undefined]),
      );
      // As the process reads it: an empty REDIS_URL is unset, so the sentinels are the only form.
      expect(parseWorkerEnv(env).redis).toEqual({
        mode: 'sentinel',
        name: 'llmgw',
        sentinels: [1, 2, 3].map((i) => ({ host: `sentinel${i}`, port: 26379 })),
      });
    }
  });

  it('runs Redis with noeviction and an append-only file', () => {
    const redis = resolvedConfig().services.redis!;
    expect(redis.image).toMatch(/^redis:7/);
    const args = Array.isArray(redis.command) ? redis.command.join(' ') : String(redis.command);
    expect(args).toContain('--maxmemory-policy noeviction');
    expect(args).toContain('--appendonly yes');
    expect(args).not.toContain('allkeys-lru');
  });

  it('puts nginx with deploy/nginx.conf in front of api1 and api2, whose port its upstream names', () => {
    const { services } = resolvedConfig();
    const nginx = services.nginx!;
    expect(volumeTargets(nginx)).toContain('/etc/nginx/nginx.conf');
    expect(volumeSources(nginx).some((s) => s?.endsWith('deploy/nginx.conf'))).toBe(true);
    expect(nginx.depends_on).toMatchObject({
      api1: { condition: 'service_healthy' },
      api2: { condition: 'service_healthy' },
    });
    const upstream = readFileSync(join(REPO_ROOT, 'deploy/nginx.conf'), 'utf8').match(
      /^\s*server\s+([\w.-]+):(\d+)\b/gm,
    );
    expect(upstream).toHaveLength(2);
    for (const line of upstream!) {
      const [, host, port] = /server\s+([\w.-]+):(\d+)/.exec(line)!;
      const api = services[host!];
      expect(api, `${host} is a compose service`).toBeDefined();
      expect(api!.build?.dockerfile).toBe('Dockerfile.api');
      expect(api!.environment?.PORT).toBe(port);
      expect(api!.ports ?? []).toEqual([]);
    }
  });

  it('runs two workers whose slots match the backend batch size', () => {
    const { services } = resolvedConfig(['--profile', 'gpu']);
    const worker = services.worker!;
    expect(worker.deploy?.replicas).toBe(2);
    const concurrency = worker.environment?.WORKER_CONCURRENCY;
    expect(concurrency).toMatch(/^\d+$/);
    expect(services.sim!.environment?.SIM_MAX_NUM_SEQS).toBe(concurrency);
    const vllm = services.vllm!;
    const cmd = vllm.command as string[];
    expect(cmd[cmd.indexOf('--max-num-seqs') + 1]).toBe(concurrency);
    expect(vllm.deploy?.resources?.reservations?.devices).toHaveLength(1);
    expect(vllm.shm_size).toBeTruthy();
  });

  it('gives api and worker containers more time to stop than SHUTDOWN_GRACE_MS', () => {
    const { services } = resolvedConfig();
    for (const name of ['api1', 'api2', 'worker', 'nginx']) {
      const s = services[name]!;
      const graceMs = Number(s.environment?.SHUTDOWN_GRACE_MS ?? 30_000);
      expect(seconds(s.stop_grace_period) * 1000, name).toBeGreaterThan(graceMs);
    }
  });

  it('health-checks the containers on the ports their images listen on', () => {
    const { services } = resolvedConfig();
    expect(services.api1!.healthcheck?.test?.join(' ')).toContain('127.0.0.1:8000/livez');
    const workerImage = readDockerfile(join(REPO_ROOT, 'Dockerfile.worker'));
    const runtime = workerImage.stages.at(-1)!;
    const env = runtime.instructions.find((i) => i.keyword === 'ENV')!.args;
    expect(env).toContain(`METRICS_PORT=${services.worker!.environment?.METRICS_PORT}`);
    expect(services.redis!.healthcheck?.test).toContain('redis-cli');
  });

  it('mounts the Prometheus and Grafana files from the paths the monitoring setup uses', () => {
    const { services } = resolvedConfig();
    const prom = volumeSources(services.prometheus!);
    expect(prom.some((s) => s?.endsWith('/prometheus.yml'))).toBe(true);
    expect(prom.some((s) => s?.endsWith('deploy/prometheus/rules.yml'))).toBe(true);
    const grafana = volumeSources(services.grafana!);
    expect(grafana.some((s) => s?.endsWith('deploy/grafana/provisioning'))).toBe(true);
    expect(grafana.some((s) => s?.endsWith('deploy/grafana/dashboards'))).toBe(true);
  });

  it('reaches, for every .env.example variable a process reads, each container running that process', () => {
    const dir = mkdtempSync(join(tmpdir(), 'llmgw-envfile-'));
    try {
      // Each schema variable set to a value of its own; the rest (ports, image tags) as in the example.
      const readers = (v: string) => Object.keys(SCHEMAS).filter((p) => SCHEMAS[p]!.variables.has(v));
      const lines = exampleVariables().map(([k, v]) =>
        readers(k).length > 0 ? `${k}=marker-${k}` : `${k}=${v}`,
      );
      writeFileSync(join(dir, '.env'), `${lines.join('\n')}\n`);
      const { services } = resolvedConfig(['--env-file', join(dir, '.env')]);
      const missing: string[] = [];
      let checked = 0;
      for (const [k] of exampleVariables()) {
        for (const process of readers(k)) {
          const containers = Object.entries(services).filter(
            ([, svc]) => svc.build?.dockerfile === SCHEMAS[process]!.dockerfile,
          );
          expect(containers.length, process).toBeGreaterThan(0);
          for (const [name, svc] of containers) {
            checked++;
            if (svc.environment?.[k] !== `marker-${k}`) missing.push(`${k} → ${name} (${process})`);
          }
        }
      }
      expect(missing).toEqual([]);
      expect(checked).toBeGreaterThan(20);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lists in .env.example only variables a process schema or compose itself reads', () => {
    const known = composeVariables();
    const unread = exampleVariables()
      .map(([k]) => k)
      .filter((k) => !known.has(k) && !Object.values(SCHEMAS).some((s) => s.variables.has(k)));
    expect(unread).toEqual([]);
  });

  it('points .env.example at docs/configuration.md, which documents each of its variables', () => {
    const header = readFileSync(join(REPO_ROOT, '.env.example'), 'utf8').split('\n').slice(0, 5).join('\n');
    expect(header).toContain('docs/configuration.md');
    expect(header).not.toContain('README.md');
    const doc = readFileSync(join(REPO_ROOT, 'docs/configuration.md'), 'utf8');
    expect(
      exampleVariables()
        .map(([k]) => k)
        .filter((k) => !doc.includes(`\`${k}\``)),
    ).toEqual([]);
  });

  it('publishes the public port, and the admin listener on 127.0.0.1 only', () => {
    const ports = (resolvedConfig().services.nginx!.ports ?? []).map((p) =>
      typeof p === 'string' ? p : JSON.stringify(p),
    );
    const conf = readFileSync(join(REPO_ROOT, 'deploy/nginx.conf'), 'utf8');
    expect([...conf.matchAll(/^\s*listen\s+(\d+)/gm)].map((m) => m[1])).toEqual(['80', '8080']);
    // compose writes a port as `host_ip:published:target/proto` or as an object, by version.
    const target = (p: string, port: number) => new RegExp(`"target":${port}\\b|:${port}(/tcp)?$`).test(p);
    expect(ports.some((p) => target(p, 80) && !p.includes('127.0.0.1'))).toBe(true);
    const admin = ports.filter((p) => target(p, 8080));
    expect(admin).toHaveLength(1);
    expect(admin[0]).toContain('127.0.0.1');
  });

  it('lists every variable the compose file reads in .env.example', () => {
    const used = new Set(
      [...readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8').matchAll(/\$\{(\w+)/g)].map(
        (m) => m[1],
      ),
    );
    const example = readFileSync(join(REPO_ROOT, '.env.example'), 'utf8');
    const listed = new Set([...example.matchAll(/^(\w+)=/gm)].map((m) => m[1]));
    expect([...used].filter((v) => !listed.has(v))).toEqual([]);
  });
});
