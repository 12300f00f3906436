import { defineConfig } from 'vitest/config';

// Workspace packages export their TypeScript sources under this condition and their built dist/ JS
// otherwise (see tsconfig.build.base.json). Tests run the sources: Vite resolves imports with these
// conditions, and Vitest passes the ssr ones to its test processes as `--conditions`. Setting the
// option replaces Vite's defaults, so they are repeated (client: module, browser; ssr: node), except
// ssr's `module`: Node itself never reads it, and a package whose `module` build Node cannot load
// (@opentelemetry/api's extensionless ESM) would fail under tests only.
const SOURCE = '@llmgw/source';

export default defineConfig({
  resolve: { conditions: [SOURCE, 'module', 'browser', 'development|production'] },
  ssr: { resolve: { conditions: [SOURCE, 'node', 'development|production'] } },
  test: {
    include: [
      'apps/*/src/**/*.test.ts',
      'packages/*/src/**/*.test.ts',
      'e2e/src/**/*.test.ts',
      'scripts/**/*.test.ts',
      'bench/src/**/*.test.ts',
      'deploy/test/**/*.test.ts',
    ],
    globalSetup: ['./vitest.global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Tests spawn servers and child processes; two cores, so keep parallelism modest.
    pool: 'forks',
    maxWorkers: 2,
  },
});
