/**
 * deploy/kubernetes/: every document parses and passes the Kubernetes OpenAPI schemas, the objects
 * refer to each other consistently, and the probe paths and ports the Deployments name exist in the
 * apps (asked of a running api and worker). What `kubectl apply -f deploy/kubernetes/` applies (the
 * top-level files) uses built-in kinds only, so it works on a cluster without KEDA; the KEDA
 * ScaledObjects live in deploy/kubernetes/keda/ and pass KEDA's schema (issue 23 §2). The Redis
 * forms configmap.yaml documents in comments (Sentinel, Cluster, TLS: issue 22 §6) parse with the
 * api's and the worker's own env schemas when swapped in for REDIS_URL, and a mix is refused.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { parseApiEnv } from '@llmgw/api';
import { deleteKeysWithPrefix, freePort, type SpawnedService, spawnService } from '@llmgw/devkit';
import { parseWorkerEnv } from '@llmgw/worker';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { REPO_ROOT, readDockerfile } from './support.ts';

const DIR = join(REPO_ROOT, 'deploy/kubernetes');

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  file: string;
}

interface Probe {
  httpGet?: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  ports?: { name?: string; containerPort: number }[];
  env?: { name: string; value?: string }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string; optional?: boolean } }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  containers: Container[];
  volumes?: { name: string; secret?: { secretName: string; optional?: boolean } }[];
}

/** What `kubectl apply -f <dir>` reads: the files of that folder (not its subfolders) by extension. */
const APPLIED = /\.(ya?ml|json)$/;
const KEDA_DIR = join(DIR, 'keda');

function readObjects(dir: string, names: string[]): Obj[] {
  return names.flatMap((name) => {
    const file = relative(DIR, join(dir, name));
    return parseAllDocuments(readFileSync(join(dir, name), 'utf8')).map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
      return { ...(doc.toJS() as Omit<Obj, 'file'>), file };
    });
  });
}

/** Every file under a folder, subfolders included, as paths relative to it. */
const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)));

/** The applied files and the Secret example. */
const files = readdirSync(DIR).filter((f) => APPLIED.test(f) || f === 'secret.yaml.example');
const objects: Obj[] = readObjects(DIR, files);
/** deploy/kubernetes/keda/ and its subfolders: applied on their own, where KEDA is installed. */
const kedaObjects: Obj[] = readObjects(
  KEDA_DIR,
  filesUnder(KEDA_DIR).filter((f) => APPLIED.test(f)),
);
const find = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);
const all = (kind: string) => objects.filter((o) => o.kind === kind);
const podSpec = (d: Obj) => (d.spec as { template: { spec: PodSpec } }).template.spec;
const podLabels = (d: Obj) =>
  (d.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
const container = (name: string) => podSpec(find('Deployment', name)!).containers[0]!;
const config = () => find('ConfigMap', 'llmgw-config')!.data!;

/** A container's variable: its own env, else the ConfigMap it reads. */
function envOf(c: Container, name: string): string | undefined {
  return (
    c.env?.find((e) => e.name === name)?.value ??
    (c.envFrom?.some((f) => f.configMapRef) ? config()[name] : undefined)
  );
}

/** A probe's port as a number (named ports resolved through the container's ports). */
function portOf(c: Container, probe: Probe): number {
  const port = probe.httpGet!.port;
  return typeof port === 'number' ? port : c.ports!.find((p) => p.name === port)!.containerPort;
}

type Model = new (data: never) => { validate(): void };
/** Kinds every cluster serves: what the top-level files may hold. */
const BUILT_IN: Record<string, Model> = {
  'apps/v1/Deployment': Deployment,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
};
/** Kinds that need a CustomResourceDefinition installed first: only in optional folders. */
const NEEDS_CRD: Record<string, Model> = {
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
};

function expectValid(o: Obj, Model: Model | undefined) {
  expect(Model, `${o.file}: ${o.apiVersion} ${o.kind}`).toBeDefined();
  const { file: _file, ...data } = o;
  expect(() => new Model!(data as never).validate(), `${o.file}: ${o.kind}/${o.metadata.name}`).not.toThrow();
  expect(o.metadata.namespace, o.file).toBeUndefined();
}

describe('deploy/kubernetes manifests', () => {
  it('apply on a plain cluster: the top-level files hold no kind that needs a CRD (KEDA’s is in keda/)', () => {
    for (const o of objects) {
      const kind = `${o.apiVersion}/${o.kind}`;
      expect(
        NEEDS_CRD[kind] === undefined && BUILT_IN[kind] !== undefined,
        `${o.file}: ${kind} is not a built-in kind; \`kubectl apply -f deploy/kubernetes/\` would fail where its CRD is not installed: move it to an optional folder`,
      ).toBe(true);
    }
  });

  it('parse and pass the Kubernetes schemas, with no namespace of their own', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'ConfigMap/llmgw-config',
      'Deployment/llmgw-api',
      'Deployment/llmgw-worker',
      'HorizontalPodAutoscaler/llmgw-api',
      'PodDisruptionBudget/llmgw-api',
      'PodDisruptionBudget/llmgw-worker',
      'Secret/llmgw-secrets',
      'Service/llmgw-api',
      'Service/llmgw-worker-metrics',
    ]);
    for (const o of objects) expectValid(o, BUILT_IN[`${o.apiVersion}/${o.kind}`]);
  });

  it('keda/: each ScaledObject passes KEDA’s schema and scales the worker Deployment on the queue depth', () => {
    expect(kedaObjects.map((o) => `${o.file} ${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'keda/scale-to-zero/worker-scaledobject.yaml ScaledObject/llmgw-worker',
      'keda/worker-scaledobject.yaml ScaledObject/llmgw-worker',
    ]);
    for (const o of kedaObjects) {
      expectValid(o, NEEDS_CRD[`${o.apiVersion}/${o.kind}`]);
      const spec = o.spec as {
        scaleTargetRef: { apiVersion?: string; kind?: string; name: string };
        minReplicaCount: number;
        maxReplicaCount: number;
        triggers: { type: string; metadata: { query: string } }[];
      };
      const target = find('Deployment', spec.scaleTargetRef.name);
      expect(target, `${o.file}: scaleTargetRef names a Deployment of deploy/kubernetes/`).toBeDefined();
      expect(spec.scaleTargetRef, o.file).toMatchObject({ apiVersion: 'apps/v1', kind: 'Deployment' });
      expect(spec.scaleTargetRef.name, o.file).toBe('llmgw-worker');
      expect(spec.minReplicaCount, o.file).toBeLessThanOrEqual(spec.maxReplicaCount);
      expect(spec.triggers[0], o.file).toMatchObject({ type: 'prometheus' });
      expect(spec.triggers[0]!.metadata.query, o.file).toContain('llm_queue_depth');
    }
  });

  it('select the pods they mean: Services, PDBs and HPA', () => {
    const matches = (selector: Record<string, string>, name: string) => {
      const labels = podLabels(find('Deployment', name)!);
      return Object.entries(selector).every(([k, v]) => labels[k] === v);
    };
    expect(
      matches(
        (find('Service', 'llmgw-api')!.spec as { selector: Record<string, string> }).selector,
        'llmgw-api',
      ),
    ).toBe(true);
    expect(
      matches(
        (find('Service', 'llmgw-worker-metrics')!.spec as { selector: Record<string, string> }).selector,
        'llmgw-worker',
      ),
    ).toBe(true);
    for (const [pdb, deploy] of [
      ['llmgw-api', 'llmgw-api'],
      ['llmgw-worker', 'llmgw-worker'],
    ] as const) {
      const sel = (
        find('PodDisruptionBudget', pdb)!.spec as { selector: { matchLabels: Record<string, string> } }
      ).selector;
      expect(matches(sel.matchLabels, deploy), pdb).toBe(true);
    }
    expect(find('HorizontalPodAutoscaler', 'llmgw-api')!.spec).toMatchObject({
      scaleTargetRef: { kind: 'Deployment', name: 'llmgw-api' },
    });
    // Service target ports name container ports.
    for (const [svc, deploy] of [
      ['llmgw-api', 'llmgw-api'],
      ['llmgw-worker-metrics', 'llmgw-worker'],
    ] as const) {
      const ports = (find('Service', svc)!.spec as { ports: { targetPort: string }[] }).ports;
      for (const p of ports)
        expect(
          container(deploy).ports?.map((c) => c.name),
          svc,
        ).toContain(p.targetPort);
    }
  });

  it('the scale-to-zero variant scales from 0 and activates on a waiting job', () => {
    const data = kedaObjects.find((o) => o.file === 'keda/scale-to-zero/worker-scaledobject.yaml')!;
    expect(data.spec).toMatchObject({
      minReplicaCount: 0,
      scaleTargetRef: { name: 'llmgw-worker' },
      triggers: [
        {
          type: 'prometheus',
          metadata: { activationThreshold: '0', query: expect.stringContaining('llm_queue_depth') },
        },
      ],
    });
  });

  it('read the ConfigMap and the Secret the manifests define', () => {
    for (const d of all('Deployment')) {
      for (const c of podSpec(d).containers) {
        for (const f of c.envFrom ?? []) {
          if (f.configMapRef) expect(find('ConfigMap', f.configMapRef.name), d.metadata.name).toBeDefined();
          if (f.secretRef) expect(find('Secret', f.secretRef.name), d.metadata.name).toBeDefined();
        }
      }
    }
  });

  it('give pods longer to stop than preStop + SHUTDOWN_GRACE_MS, and run them as the images’ non-root user', () => {
    const uid = Number(
      readDockerfile(join(REPO_ROOT, 'Dockerfile.api'))
        .stages.at(-1)!
        .instructions.find((i) => i.keyword === 'USER')!
        .args.split(':')[0],
    );
    for (const d of all('Deployment')) {
      const spec = podSpec(d);
      for (const c of spec.containers) {
        const graceMs = Number(envOf(c, 'SHUTDOWN_GRACE_MS') ?? 30_000);
        const preStop = c.lifecycle?.preStop?.exec?.command;
        const preStopMs = preStop?.[0] === 'sleep' ? Number(preStop[1]) * 1000 : 0;
        expect(spec.terminationGracePeriodSeconds! * 1000, d.metadata.name).toBeGreaterThan(
          graceMs + preStopMs,
        );
        expect(c.resources?.requests?.cpu, d.metadata.name).toBeDefined();
        expect(c.resources?.limits?.memory, d.metadata.name).toBeDefined();
        expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false });
      }
      expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: uid });
    }
    expect(container('llmgw-api').lifecycle?.preStop?.exec?.command).toEqual(['sleep', '5']);
  });

  it('name the worker metrics port that the worker listens on by default', () => {
    const worker = container('llmgw-worker');
    const port = portOf(worker, worker.livenessProbe!);
    expect(Number(envOf(worker, 'METRICS_PORT'))).toBe(port);
    expect(parseWorkerEnv({}).METRICS_PORT).toBe(port);
  });
});

/**
 * The settings configmap.yaml's comments offer as alternatives: its `  # KEY: value` lines, at the
 * indent of the data keys, as they would read uncommented.
 */
function commentedSettings(): Record<string, string> {
  const text = readFileSync(join(DIR, 'configmap.yaml'), 'utf8');
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/^ {2}# ([A-Z][A-Z0-9_]*): (.+)$/gm)) {
    out[m[1]!] = String((parseYaml(`v: ${m[2]}`) as { v: unknown }).v);
  }
  return out;
}

describe('Redis with failover: the forms configmap.yaml documents, parsed as the pods would', () => {
  const alt = commentedSettings();
  const TLS_FILES = ['REDIS_TLS_CA_FILE', 'REDIS_TLS_CERT_FILE', 'REDIS_TLS_KEY_FILE'] as const;
  const TLS_VOLUME = 'llmgw-redis-tls';
  /** What a pod's environment holds: the ConfigMap, then the Secret example over it (envFrom order). */
  const applied = () => ({ ...config(), ...find('Secret', 'llmgw-secrets')!.stringData });
  /** The applied environment with REDIS_URL replaced by other settings, as the comments say. */
  const switched = (settings: Record<string, string>) => {
    const { REDIS_URL: _, ...rest } = applied();
    return { ...rest, ...settings };
  };
  const pick = (...names: string[]) => Object.fromEntries(names.map((n) => [n, alt[n]!]));
  const parsers = { api: parseApiEnv, worker: parseWorkerEnv } as const;

  /** The folder the TLS Secret is mounted at, the same in every container. */
  const mountPath = () => {
    const paths = new Set<string>();
    for (const d of all('Deployment')) {
      const spec = podSpec(d);
      const volume = spec.volumes?.find((v) => v.secret?.secretName === TLS_VOLUME);
      expect(volume, `${d.metadata.name}: a volume from Secret ${TLS_VOLUME}`).toBeDefined();
      // Optional, so that the pods start where no TLS is used and the Secret does not exist.
      expect(volume!.secret!.optional, d.metadata.name).toBe(true);
      for (const c of spec.containers) {
        const mount = c.volumeMounts?.find((m) => m.name === volume!.name);
        expect(mount, `${d.metadata.name}/${c.name} mounts ${volume!.name}`).toBeDefined();
        expect(mount!.readOnly, `${d.metadata.name}/${c.name}`).toBe(true);
        paths.add(mount!.mountPath);
      }
    }
    expect(paths.size).toBe(1);
    return [...paths][0]!;
  };

  let pemDir: string;
  beforeAll(() => {
    pemDir = mkdtempSync(join(tmpdir(), 'llmgw-k8s-tls-'));
  });
  afterAll(() => rmSync(pemDir, { recursive: true, force: true }));

  /** The TLS lines, with their files (as the Secret's keys) written under a local folder instead. */
  const tlsSettings = () => {
    const dir = mountPath();
    const out: Record<string, string> = { REDIS_TLS: alt.REDIS_TLS! };
    for (const name of TLS_FILES) {
      const path = alt[name]!;
      expect(dirname(path), `${name} is a file of the mounted Secret`).toBe(dir);
      const local = join(pemDir, basename(path));
      writeFileSync(local, `-----BEGIN PLACEHOLDER-----\n${name}\n-----END PLACEHOLDER-----\n`);
      out[name] = local;
    }
    return out;
  };

  it('documents Sentinel, Cluster and TLS, and the Secret example names the TLS files they read', () => {
    expect(
      Object.keys(alt)
        .filter((k) => k.startsWith('REDIS_'))
        .sort(),
    ).toEqual(['REDIS_CLUSTER_NODES', 'REDIS_SENTINELS', 'REDIS_TLS', ...TLS_FILES].sort());
    const example = readFileSync(join(DIR, 'secret.yaml.example'), 'utf8');
    expect(example).toContain(`create secret generic ${TLS_VOLUME}`);
    for (const name of TLS_FILES) expect(example, name).toContain(`--from-file=${basename(alt[name]!)}=`);
    // The password goes where every form reads it, not inside a REDIS_URL that would mix.
    expect(find('Secret', 'llmgw-secrets')!.stringData).toHaveProperty('REDIS_PASSWORD');
  });

  it('the commented tracing line turns OpenTelemetry on in the api and the worker; as applied it is off', () => {
    expect(alt.OTEL_EXPORTER_OTLP_ENDPOINT).toMatch(/^http:\/\/.+:4318$/);
    for (const parse of Object.values(parsers)) {
      expect(parse(applied()).tracing.enabled).toBe(false);
      expect(parse({ ...applied(), ...pick('OTEL_EXPORTER_OTLP_ENDPOINT') }).tracing.enabled).toBe(true);
    }
  });

  for (const [proc, parse] of Object.entries(parsers)) {
    it(`${proc}: as applied, one primary; with REDIS_SENTINELS or REDIS_CLUSTER_NODES in its place, Sentinel or Cluster, with TLS or without`, () => {
      expect(parse(applied()).redis).toMatchObject({ mode: 'single', url: config().REDIS_URL });
      const sentinel = parse(switched(pick('REDIS_SENTINELS'))).redis;
      expect(sentinel).toMatchObject({ mode: 'sentinel', name: 'mymaster' });
      expect(sentinel).not.toHaveProperty('tls');
      expect(parse(switched(pick('REDIS_CLUSTER_NODES'))).redis).toMatchObject({ mode: 'cluster' });
      // The password of the Secret example reaches every form.
      const password = find('Secret', 'llmgw-secrets')!.stringData!.REDIS_PASSWORD;
      for (const form of ['REDIS_SENTINELS', 'REDIS_CLUSTER_NODES']) {
        const tls = parse(switched({ ...pick(form), ...tlsSettings() })).redis;
        expect(tls, form).toMatchObject({
          password,
          tls: { ca: expect.any(String), cert: expect.any(String) },
        });
      }
    });

    it(`${proc}: refuses a mix of forms, and TLS lines on a redis:// primary`, () => {
      expect(() => parse({ ...applied(), ...pick('REDIS_SENTINELS') })).toThrow(
        /REDIS_SENTINELS: set one of/,
      );
      expect(() => parse({ ...applied(), ...pick('REDIS_CLUSTER_NODES') })).toThrow(
        /REDIS_CLUSTER_NODES: set one of/,
      );
      expect(() => parse(switched(pick('REDIS_SENTINELS', 'REDIS_CLUSTER_NODES')))).toThrow(/set one of/);
      expect(() => parse({ ...applied(), ...tlsSettings() })).toThrow(/REDIS_TLS: .*rediss:\/\//);
    });
  }
});

describe('probe paths the manifests name, asked of running processes', () => {
  const procs: SpawnedService[] = [];
  const base = { api: '', worker: '' };
  const env = { REDIS_URL: inject('redisUrl'), KEY_PREFIX: `test-${randomUUID()}` };

  beforeAll(async () => {
    const [apiPort, metricsPort] = await Promise.all([freePort(), freePort()]);
    const api = spawnService('api', { ...env, PORT: String(apiPort) });
    const worker = spawnService('worker', { ...env, METRICS_PORT: String(metricsPort), SIM_PORT: '9' });
    procs.push(api, worker);
    await Promise.all([
      api.waitFor((l) => l.msg === 'api_listening'),
      worker.waitFor((l) => l.msg === 'worker_started'),
    ]);
    base.api = `http://127.0.0.1:${apiPort}`;
    base.worker = `http://127.0.0.1:${metricsPort}`;
  }, 30_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await deleteKeysWithPrefix(env.REDIS_URL, env.KEY_PREFIX);
  });

  it('api: startup and liveness answer 200, readiness exists', async () => {
    const c = container('llmgw-api');
    expect(portOf(c, c.livenessProbe!)).toBe(Number(c.env?.find((e) => e.name === 'PORT')?.value));
    for (const [kind, probe] of [
      ['startup', c.startupProbe],
      ['liveness', c.livenessProbe],
      ['readiness', c.readinessProbe],
    ] as const) {
      const res = await fetch(`${base.api}${probe!.httpGet!.path}`);
      await res.body?.cancel();
      if (kind === 'readiness') expect(res.status, `${kind} ${probe!.httpGet!.path}`).not.toBe(404);
      else expect(res.status, `${kind} ${probe!.httpGet!.path}`).toBe(200);
    }
  });

  it('worker: liveness answers 200 on METRICS_PORT, and /metrics is served there', async () => {
    const c = container('llmgw-worker');
    const health = await fetch(`${base.worker}${c.livenessProbe!.httpGet!.path}`);
    expect(health.status).toBe(200);
    await health.body?.cancel();
    const metrics = await fetch(`${base.worker}/metrics`);
    expect(metrics.status).toBe(200);
    await metrics.body?.cancel();
  });
});
