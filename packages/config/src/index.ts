export * from './dev-state.ts';
export * from './fields.ts';
export * from './otel-env.ts';
export { EnvError, loadEnvOrExit, parseEnv } from './parse-env.ts';
export * from './redis-env.ts';
