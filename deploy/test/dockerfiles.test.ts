/**
 * Static checks of Dockerfile.api / .worker / .sim (no Docker engine here): the linter of VS Code's
 * Docker extension finds no problem, and each image is a non-root, exec-form, health-checked
 * runtime stage holding only the `pnpm deploy` output of its build stage.
 * production-build.test.ts runs the build stage's commands for real.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validate } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';
import { dockerignoreMatcher, REPO_ROOT, readDockerfile } from './support.ts';

const IMAGES = [
  { file: 'Dockerfile.api', pkg: '@llmgw/api', portVar: 'PORT', port: '8000' },
  { file: 'Dockerfile.worker', pkg: '@llmgw/worker', portVar: 'METRICS_PORT', port: '9100' },
  { file: 'Dockerfile.sim', pkg: '@llmgw/sim', portVar: 'SIM_PORT', port: '8001' },
] as const;

describe.each(IMAGES)('$file', ({ file, pkg, portVar, port }) => {
  const path = join(REPO_ROOT, file);
  const { args, stages } = readDockerfile(path);
  const build = stages[0]!;
  const runtime = stages.at(-1)!;
  const runtimeOf = (keyword: string) => runtime.instructions.filter((i) => i.keyword === keyword);

  it('has no problem the Dockerfile linter reports', () => {
    const problems = validate(readFileSync(path, 'utf8')).map(
      (d) => `${file}:${d.range.start.line + 1}: ${d.message}`,
    );
    expect(problems).toEqual([]);
  });

  it('builds on node 20 (bookworm-slim) with the lockfile, and deploys only its package', () => {
    expect(args.find((a) => a.keyword === 'ARG')?.args).toBe('NODE_IMAGE=node:20-bookworm-slim');
    expect(stages).toHaveLength(2);
    expect(build.name).toBe('build');
    expect(runtime.from).toBe(`\${NODE_IMAGE}`);
    const runs = build.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    expect(runs).toContain('pnpm install --frozen-lockfile --offline');
    expect(runs).toContain('pnpm build');
    expect(runs.find((r) => r.includes(' deploy '))).toMatch(
      new RegExp(`^pnpm --filter ${pkg} deploy --prod .*/out$`),
    );
  });

  it('copies only the deploy output into the runtime stage', () => {
    const copies = runtimeOf('COPY').map((i) => i.args);
    expect(copies.length).toBeGreaterThan(0);
    for (const c of copies) expect(c).toMatch(/^--from=build \/out\/\S+ \S+$/);
    expect(copies.map((c) => c.split(' ')[1]).sort()).toEqual([
      '/out/dist',
      '/out/node_modules',
      '/out/package.json',
    ]);
  });

  it('runs node directly (exec form, so SIGTERM reaches it) as a non-root user', () => {
    const [cmd] = runtimeOf('CMD');
    expect(cmd?.exec).toEqual(['node', 'dist/main.js']);
    expect(runtimeOf('ENTRYPOINT')).toEqual([]);
    const user = runtimeOf('USER').at(-1)?.args;
    expect(user).toMatch(/^\d+:\d+$/);
    expect(user?.startsWith('0')).toBe(false);
  });

  it(`health-checks its liveness path on ${portVar} (default ${port}), the port it exposes`, () => {
    const [hc] = runtimeOf('HEALTHCHECK');
    expect(hc?.exec?.slice(0, 2)).toEqual(['node', '-e']);
    // The api's image checks /livez (alive), not /health (which is 503 whenever a dependency is down).
    expect(hc?.exec?.[2]).toContain(
      `(process.env.${portVar}||${port})+'${pkg === '@llmgw/api' ? '/livez' : '/health'}'`,
    );
    expect(
      runtimeOf('ENV')
        .map((e) => e.args)
        .join(' '),
    ).toMatch(new RegExp(`\\b${portVar}=${port}\\b`));
    expect(runtimeOf('EXPOSE').map((e) => e.args)).toEqual([port]);
  });
});

describe('.dockerignore', () => {
  const ignored = dockerignoreMatcher(readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8'));

  it('keeps installed and built output, secrets and git out of the build context', () => {
    for (const p of [
      'node_modules',
      'apps/api/node_modules',
      'apps/api/dist',
      '.git',
      '.env',
      'bench/out',
      // The e2e client suites' virtualenv (~500 MB, made by .ci/run), the local dev keys and
      // pnpm start's dev-state file (it may hold a Redis password).
      '.venv-clients',
      '.llmgw-dev-key',
      '.llmgw-dev-key.8100',
      '.llmgw-dev-state.json',
    ])
      expect(ignored(p), p).toBe(true);
  });

  it('lets through everything `pnpm install` and `pnpm build` read', () => {
    for (const p of [
      'package.json',
      'pnpm-lock.yaml',
      'pnpm-workspace.yaml',
      'tsconfig.json',
      'tsconfig.build.json',
      'tsconfig.build.base.json',
      'scripts/build-assets.ts',
      'apps/api/package.json',
      'apps/api/tsconfig.build.json',
      'apps/api/src/main.ts',
      'packages/redis/src/index.ts',
    ]) {
      expect(ignored(p), p).toBe(false);
      expect(existsSync(join(REPO_ROOT, p)), p).toBe(true);
    }
  });
});
