export * from './fields.ts';
export { EnvError, loadEnvOrExit, parseEnv } from './parse-env.ts';
export * from './redis-env.ts';
export * from './otel-env.ts';
