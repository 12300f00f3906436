/**
 * `@llmgw/e2e`: the stack builders and helpers of the cross-process tests, for tests elsewhere in
 * the repository (deploy/test). Loads `vitest`: import it from tests only; a script (the bench)
 * imports `@llmgw/e2e/spawned`.
 */
export * from './spawned.ts';
export * from './stack/compat.ts';
export * from './stack/in-process.ts';
export { seedTokens, simTokens } from './support/direct.ts';
