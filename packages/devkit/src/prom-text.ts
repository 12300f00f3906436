/**
 * Test helpers for Prometheus: the text exposition format as families of samples, and the metric
 * names a PromQL expression reads (dashboards and alert rules must only name metrics that exist).
 */

export interface Sample {
  /** Series name as exposed (`llm_latency_seconds_bucket`, …). */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: string;
  samples: Sample[];
}

const SUFFIXES: Record<string, string[]> = {
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['_sum', '_count'],
};

/** `# TYPE` families of a /metrics text, each with its samples (a histogram's `_bucket`… included). */
export function parseMetricsText(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  const familyOf = (series: string): MetricFamily | undefined => {
    const exact = families.get(series);
    if (exact) return exact;
    for (const f of families.values())
      if ((SUFFIXES[f.type] ?? []).some((s) => series === f.name + s)) return f;
    return undefined;
  };
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      families.set(type[1]!, { name: type[1]!, type: type[2]!, samples: [] });
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!;
    const family = familyOf(m[1]!);
    if (!family) throw new Error(`sample without # TYPE: ${line}`);
    family.samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return families;
}

/** Every series name the families can expose: each family's name and its type's suffixes. */
export function seriesNames(families: Iterable<MetricFamily>): Set<string> {
  const names = new Set<string>();
  for (const f of families) {
    names.add(f.name);
    for (const s of SUFFIXES[f.type] ?? []) names.add(f.name + s);
  }
  return names;
}

/** The value of the one sample of `name` whose labels are exactly `labels`, if any. */
export function sampleValue(
  families: Map<string, MetricFamily>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort());
  for (const f of families.values())
    for (const s of f.samples)
      if (s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want) return s.value;
  return undefined;
}

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
]);

/**
 * Metric names read by a PromQL expression (Grafana's `$variables` allowed): what is left once
 * strings, label matchers, ranges, grouping label lists, function calls, keywords and numbers
 * are taken out.
 */
export function promqlMetricNames(expr: string): Set<string> {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w:$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const word = m[1]!;
    if (m[2] || KEYWORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return names;
}
