/**
 * prometheus.yml, the alert rules and the Grafana files: consistent with docker-compose.yml, naming
 * only metrics the processes export, passing promtool, and — with a real Prometheus (Debian's
 * `prometheus` package; .ci/run installs it) scraping a running stack — returning what a load
 * produced.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { DEFAULT_MODEL } from '@llmgw/config';
import { freePort, type MetricFamily, parseMetricsText, promqlMetricNames, seriesNames } from '@llmgw/devkit';
import { type Stack, startStack } from '@llmgw/e2e';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse, stringify } from 'yaml';
import { REPO_ROOT, type RunningProcess, startProcess } from './support.ts';

const read = (path: string) => readFileSync(join(REPO_ROOT, path), 'utf8');
const runs = (cmd: string) => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;

interface ScrapeConfig {
  job_name: string;
  metrics_path?: string;
  scrape_interval?: string;
  scrape_timeout?: string;
  static_configs?: { targets: string[] }[];
  dns_sd_configs?: { names: string[]; type?: string; port: number }[];
}
interface PrometheusConfig {
  global: { scrape_interval: string; evaluation_interval?: string };
  rule_files: string[];
  scrape_configs: ScrapeConfig[];
}
interface AlertRule {
  alert?: string;
  record?: string;
  expr: string;
}
interface ComposeService {
  environment?: Record<string, string>;
  command?: string[];
  volumes?: string[];
  ports?: string[];
  deploy?: { replicas?: number };
}

const promConfig = () => parse(read('prometheus.yml')) as PrometheusConfig;
const alertRules = () =>
  (parse(read('deploy/prometheus/rules.yml')) as { groups: { rules: AlertRule[] }[] }).groups.flatMap(
    (g) => g.rules,
  );
// `merge`: the api services come from a `<<: *api` anchor.
const compose = () =>
  (parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, ComposeService> })
    .services;

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos?: { h: number; w: number; x: number; y: number };
  targets?: { expr: string; refId: string; datasource?: { uid: string } }[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; definition?: string; datasource?: { uid: string } }[] };
}
const dashboard = () => JSON.parse(read('deploy/grafana/dashboards/llm-gateway.json')) as Dashboard;
const allPanels = (d: Dashboard) => d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
/** Every PromQL expression of the dashboard, with the panel it belongs to. */
const dashboardExprs = (d: Dashboard) => [
  ...allPanels(d).flatMap((p) => (p.targets ?? []).map((t) => ({ where: p.title, expr: t.expr }))),
  ...d.templating.list.map((v) => ({
    where: `variable $${v.name}`,
    expr: /^label_values\((.+),\s*\w+\)$/.exec(v.definition ?? '')?.[1] ?? '',
  })),
];
/** The expression as Grafana sends it (what Prometheus itself accepts). */
const asGrafanaSends = (expr: string) => expr.replaceAll('$__rate_interval', '1m').replaceAll('$model', '.*');

/** `host:container[:ro]` volume strings of a compose service → container path of a host path. */
function mountTarget(service: ComposeService, hostPath: string): string | undefined {
  for (const v of service.volumes ?? []) {
    const [src, target] = v.split(':');
    if (src !== undefined && posix.normalize(src) === posix.normalize(hostPath)) return target;
  }
  return undefined;
}

/** Go's filepath.Match for the `*` and `?` that rule_files use. */
const globMatches = (pattern: string, path: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '[^/]*')
      .replace(/\?/g, '[^/]')}$`,
  ).test(path);

describe('prometheus.yml and the Grafana files against docker-compose.yml', () => {
  const services = compose();

  it('scrapes every 15 s: both apis on PORT, every worker replica on METRICS_PORT, the backend', () => {
    const config = promConfig();
    expect(config.global.scrape_interval).toBe('15s');
    const jobs = Object.fromEntries(config.scrape_configs.map((j) => [j.job_name, j]));
    expect(Object.keys(jobs).sort()).toEqual(['api', 'backend', 'worker']);
    for (const j of config.scrape_configs) expect(j.metrics_path ?? '/metrics').toBe('/metrics');

    const apis = Object.keys(services).filter((s) => /^api\d*$/.test(s));
    expect(apis.length).toBeGreaterThanOrEqual(2);
    expect(jobs.api!.static_configs?.flatMap((s) => s.targets).sort()).toEqual(
      apis.map((s) => `${s}:${services[s]!.environment?.PORT}`).sort(),
    );

    // One A record per replica under the service name: every replica is a target.
    expect(services.worker!.deploy?.replicas).toBeGreaterThan(1);
    expect(jobs.worker!.dns_sd_configs).toEqual([
      expect.objectContaining({
        names: ['worker'],
        type: 'A',
        port: Number(services.worker!.environment?.METRICS_PORT),
      }),
    ]);

    const backends = Object.fromEntries(
      (jobs.backend!.dns_sd_configs ?? []).map((c) => [c.names.join(','), c.port]),
    );
    expect(backends.sim).toBe(Number(services.sim!.environment?.SIM_PORT));
    const vllmPort = services.vllm!.command?.[services.vllm!.command.indexOf('--port') + 1];
    expect(backends.vllm).toBe(Number(vllmPort));
  });

  it('loads the rules file where compose mounts it', () => {
    const prometheus = services.prometheus!;
    const configAt = mountTarget(prometheus, './prometheus.yml');
    const rulesAt = mountTarget(prometheus, './deploy/prometheus/rules.yml');
    expect(configAt).toBeDefined();
    expect(rulesAt).toBeDefined();
    const patterns = promConfig().rule_files.map((f) => posix.join(posix.dirname(configAt!), f));
    expect(patterns.some((p) => globMatches(p, rulesAt!))).toBe(true);
  });

  it('provisions the Prometheus datasource and the dashboard folder compose mounts', () => {
    const grafana = services.grafana!;
    const provisioningAt = mountTarget(grafana, './deploy/grafana/provisioning');
    const dashboardsAt = mountTarget(grafana, './deploy/grafana/dashboards');
    expect(provisioningAt).toBe('/etc/grafana/provisioning');

    const { datasources } = parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as {
      datasources: { type: string; uid: string; url: string }[];
    };
    expect(datasources).toHaveLength(1);
    const ds = datasources[0]!;
    expect(ds.type).toBe('prometheus');
    // The compose service `prometheus` listens on 9090 inside the network.
    expect(services.prometheus!.ports?.some((p) => p.endsWith(':9090'))).toBe(true);
    expect(ds.url).toBe('http://prometheus:9090');

    const { providers } = parse(read('deploy/grafana/provisioning/dashboards/llm-gateway.yml')) as {
      providers: { type: string; options: { path: string } }[];
    };
    expect(providers.map((p) => p.options.path)).toEqual([dashboardsAt]);

    const d = dashboard();
    const panels = allPanels(d);
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    for (const p of panels.filter((p) => p.type !== 'row')) {
      expect(p.gridPos, p.title).toBeDefined();
      expect(p.datasource?.uid, p.title).toBe(ds.uid);
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets!) expect(t.datasource?.uid ?? ds.uid, p.title).toBe(ds.uid);
    }
    const titles = panels.map((p) => p.title).join('\n');
    for (const want of [
      /time to first token/i,
      /tokens\/s/i,
      /request rate/i,
      /error rate/i,
      /queue depth/i,
      /active streams/i,
      /rejections/i,
      /busy vs total/i,
      /backend time to first token/i,
    ])
      expect(titles).toMatch(want);
  });
});

describe('the dashboard and the alert rules name only metrics the processes export', () => {
  let stack: Stack;
  let known: Set<string>;
  beforeAll(async () => {
    stack = await startStack({ sim: { ttftMs: 5, itlMs: 2 } });
    const scrape = async (url: string) => parseMetricsText(await (await fetch(url)).text());
    const families: MetricFamily[] = [];
    for (const url of [
      `${stack.apiUrl}/metrics`,
      `http://127.0.0.1:${stack.workers[0]!.metricsPort}/metrics`,
      `${stack.sim!.url}/metrics`,
    ])
      families.push(...(await scrape(url)).values());
    // `up` is Prometheus's own, one per target.
    known = new Set([...seriesNames(families), 'up']);
  });
  afterAll(() => stack?.close());

  it('dashboard', () => {
    const exprs = dashboardExprs(dashboard());
    expect(exprs.length).toBeGreaterThan(20);
    for (const { where, expr } of exprs) {
      const names = [...promqlMetricNames(expr)];
      expect(names.length, `${where}: ${expr}`).toBeGreaterThan(0);
      expect(
        names.filter((n) => !known.has(n)),
        `${where}: ${expr}`,
      ).toEqual([]);
    }
  });

  it('alert rules', () => {
    const rules = alertRules();
    expect(rules.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        'LLMHighTimeToFirstToken',
        'LLMHighErrorRate',
        'LLMQueueDepthHigh',
        'LLMBackendDown',
        'LLMNoLiveWorker',
      ]),
    );
    for (const r of rules) {
      expect(
        [...promqlMetricNames(r.expr)].filter((n) => !known.has(n)),
        `${r.alert ?? r.record}: ${r.expr}`,
      ).toEqual([]);
    }
  });
});

const havePromtool = runs('promtool');
if (!havePromtool)
  console.warn(
    'deploy/test/prometheus.test.ts: promtool checks skipped, no `promtool` on the PATH ' +
      '(apt-get install prometheus; .ci/run installs it)',
  );

describe.skipIf(!havePromtool)('promtool', () => {
  const promtool = (...args: string[]) => {
    const r = spawnSync('promtool', args, { cwd: REPO_ROOT, encoding: 'utf8', timeout: 20_000 });
    expect(r.status, `promtool ${args.join(' ')}\n${r.stdout}${r.stderr}`).toBe(0);
    return r.stdout;
  };

  it('check config prometheus.yml', () => {
    expect(promtool('check', 'config', 'prometheus.yml')).toContain('SUCCESS');
  });

  it('check rules deploy/prometheus/rules.yml', () => {
    expect(promtool('check', 'rules', 'deploy/prometheus/rules.yml')).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('the rules unit tests: each alert just over and just under its threshold', () => {
    expect(promtool('test', 'rules', 'deploy/prometheus/tests/rules.test.yml')).toContain('SUCCESS');
  });
});

const havePrometheus = runs('prometheus');
if (!havePrometheus)
  console.warn(
    'deploy/test/prometheus.test.ts: the real-Prometheus test skipped, no `prometheus` on the PATH ' +
      '(apt-get install prometheus; .ci/run installs it)',
  );

interface QueryResult {
  metric: Record<string, string>;
  value: [number, string];
}
interface ApiAlert {
  labels: Record<string, string>;
  state: string;
}

describe.skipIf(!havePrometheus)('a real Prometheus scraping a running stack', () => {
  let stack: Stack;
  let prom: RunningProcess;
  let promUrl: string;
  let dir: string;

  beforeAll(async () => {
    // LLM_HEALTH_URL given: the worker does not derive it from LLM_BASE_URL yet (see README's
    // configuration table), and without a probe URL llm_backend_up reads 0 (LLMBackendDown).
    const simPort = await freePort();
    stack = await startStack({
      sim: { port: simPort, ttftMs: 20, itlMs: 2 },
      workers: [{ LLM_HEALTH_URL: `http://127.0.0.1:${simPort}/health` }],
    });
    dir = mkdtempSync(join(tmpdir(), 'llmgw-prometheus-'));

    // prometheus.yml itself, its compose targets replaced by this stack's ports, every second.
    const local: Record<string, string> = {
      api: `127.0.0.1:${stack.api.port}`,
      worker: `127.0.0.1:${stack.workers[0]!.metricsPort}`,
      backend: `127.0.0.1:${stack.sim!.port}`,
    };
    const repo = promConfig();
    const config = {
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      rule_files: [join(REPO_ROOT, 'deploy/prometheus/rules.yml')],
      scrape_configs: repo.scrape_configs.map(
        ({ static_configs, dns_sd_configs, scrape_interval, scrape_timeout, ...job }) => {
          const target = local[job.job_name];
          if (!target) throw new Error(`prometheus.yml job ${job.job_name}: this test has no target for it`);
          return { ...job, static_configs: [{ targets: [target] }] };
        },
      ),
    };
    const configFile = join(dir, 'prometheus.yml');
    writeFileSync(configFile, stringify(config));
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    prom = startProcess('prometheus', 'prometheus', [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ]);
    await vi.waitFor(
      async () => {
        if (prom.child.exitCode !== null)
          throw new Error(`prometheus exited: ${prom.lines.map((l) => l.msg).join('\n')}`);
        expect((await fetch(`${promUrl}/-/ready`)).status).toBe(200);
      },
      { timeout: 15_000, interval: 100 },
    );
  }, 30_000);

  afterAll(async () => {
    if (prom) {
      const killer = setTimeout(() => prom.child.kill('SIGKILL'), 5000);
      await prom.stop();
      clearTimeout(killer);
    }
    await stack?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const api = async <T>(path: string): Promise<T> => {
    const body = (await (await fetch(`${promUrl}${path}`)).json()) as {
      status: string;
      data: T;
      error?: string;
    };
    if (body.status !== 'success') throw new Error(`${path}: ${body.error}`);
    return body.data;
  };
  const query = async (expr: string) =>
    (await api<{ result: QueryResult[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`)).result;
  const value = async (expr: string) => {
    const r = await query(expr);
    return r.length === 1 ? Number(r[0]!.value[1]) : undefined;
  };
  const eventually = (fn: () => Promise<void>, timeout = 10_000) =>
    vi.waitFor(fn, { timeout, interval: 250 });

  /** One streamed OpenAI-style request; its usage, from the usage chunk. */
  const generate = async (maxTokens: number) => {
    const res = await stack.chat(
      {
        model: DEFAULT_MODEL,
        messages: [{ role: 'user', content: `Say ${maxTokens} things.` }],
        max_tokens: maxTokens,
        stream: true,
        stream_options: { include_usage: true },
      },
      {},
      '/v1/chat/completions',
    );
    expect(res.status).toBe(200);
    const last = res.data.filter((d) => d !== '[DONE]').at(-1)!;
    return (JSON.parse(last) as { usage: { prompt_tokens: number; completion_tokens: number } }).usage;
  };
  /** Cumulative llm_latency_seconds buckets (le → count) from the api's /metrics. */
  const ttftBuckets = async () => {
    const families = parseMetricsText(await (await fetch(`${stack.apiUrl}/metrics`)).text());
    const buckets = new Map<number, number>();
    for (const s of families.get('llm_latency_seconds')?.samples ?? [])
      if (s.name === 'llm_latency_seconds_bucket') buckets.set(Number(s.labels.le), s.value);
    return buckets;
  };

  it('scrapes api, worker and simulator; token totals and the TTFT histogram match the load', async () => {
    await eventually(async () => {
      const up = await query('up');
      expect(Object.fromEntries(up.map((r) => [r.metric.job, r.value[1]]))).toEqual({
        api: '1',
        worker: '1',
        backend: '1',
      });
    });

    // One request first, scraped from all three targets: every histogram series exists in
    // Prometheus before the load, so rate() over the load sees an increase.
    const usages = [await generate(4)];
    await eventually(async () => {
      expect(await value('sum(llm_latency_seconds_count)')).toBe(1);
      expect(await value('sum(llm_backend_ttft_seconds_count)')).toBe(1);
      expect(await value('sum(vllm:time_to_first_token_seconds_count)')).toBe(1);
    });
    const before = await ttftBuckets();

    usages.push(...(await Promise.all(Array.from({ length: 20 }, (_, i) => generate(4 + (i % 5) * 4)))));
    const prompt = usages.reduce((n, u) => n + u.prompt_tokens, 0);
    const completion = usages.reduce((n, u) => n + u.completion_tokens, 0);
    expect(completion).toBe(4 + 4 * (4 + 8 + 12 + 16 + 20));

    await eventually(async () => {
      expect(await value('sum(llm_tokens_total)')).toBe(prompt + completion);
      expect(await value('sum(llm_tokens_total{type="output"})')).toBe(completion);
      expect(await value('sum(llm_latency_seconds_count)')).toBe(21);
      expect(await value('sum(llm_backend_ttft_seconds_count)')).toBe(21);
      // The simulator's own (vLLM) counters agree with the gateway's.
      expect(await value('sum(vllm:generation_tokens_total)')).toBe(completion);
      expect(await value('sum(vllm:prompt_tokens_total)')).toBe(prompt);
    });

    // The median TTFT Prometheus estimates lies within the buckets the load's first tokens fell in.
    const after = await ttftBuckets();
    const bounds = [...after.keys()].sort((a, b) => a - b);
    const delta = (le: number) => (after.get(le) ?? 0) - (before.get(le) ?? 0);
    const firstIdx = bounds.findIndex((le) => delta(le) > 0);
    const lo = firstIdx > 0 ? bounds[firstIdx - 1]! : 0;
    const hi = bounds.find((le) => delta(le) === 20)!;
    const p50 = await value('histogram_quantile(0.5, sum by (le) (rate(llm_latency_seconds_bucket[1m])))');
    expect(p50).toBeGreaterThanOrEqual(lo);
    expect(p50).toBeLessThanOrEqual(hi);
    expect(hi).toBeLessThan(5);
  }, 40_000);

  it('evaluates every alert rule against the stack, and none fires while it is healthy', async () => {
    const expected = alertRules().flatMap((r) => (r.alert ? [r.alert] : []));
    await eventually(async () => {
      const { groups } = await api<{
        groups: {
          rules: { name: string; type: string; health: string; lastError?: string; lastEvaluation: string }[];
        }[];
      }>('/api/v1/rules');
      const rules = groups.flatMap((g) => g.rules);
      expect(
        rules
          .filter((r) => r.type === 'alerting')
          .map((r) => r.name)
          .sort(),
      ).toEqual([...expected].sort());
      for (const r of rules) {
        expect(r.health, `${r.name}: ${r.lastError}`).toBe('ok');
        expect(r.lastEvaluation, r.name).not.toMatch(/^0001-/);
      }
    });
    expect((await api<{ alerts: ApiAlert[] }>('/api/v1/alerts')).alerts).toEqual([]);
  });

  it('runs every dashboard query; all but the error and rejection ones return data', async () => {
    const quiet = /llm_errors_total|_rejections_total|llm_backend_errors_total/;
    for (const { where, expr } of dashboardExprs(dashboard())) {
      const result = await query(asGrafanaSends(expr));
      if (!quiet.test(expr) || expr.includes('or vector(0)'))
        expect(result.length, `${where}: ${expr}`).toBeGreaterThan(0);
    }
  });

  it('a worker that stops: LLMWorkerDown and LLMNoLiveWorker go pending', async () => {
    await stack.workers[0]!.close(1000);
    await eventually(async () => {
      const { alerts } = await api<{ alerts: ApiAlert[] }>('/api/v1/alerts');
      const pending = alerts.filter((a) => a.state === 'pending').map((a) => a.labels);
      expect(pending).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ alertname: 'LLMWorkerDown', job: 'worker' }),
          expect.objectContaining({ alertname: 'LLMNoLiveWorker', model: DEFAULT_MODEL }),
        ]),
      );
    });
  });
});
