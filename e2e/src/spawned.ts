/**
 * `@llmgw/e2e/spawned`: the part of this package that runs outside Vitest — the spawned stack and
 * what it shares with the in-process one, and the simulator-token helpers. `pnpm bench` imports
 * this; nothing reachable from here imports `vitest` (which throws outside a test run).
 */
export * from './stack/common.ts';
export * from './stack/spawned.ts';
export * from './support/direct.ts';
