import { loadEnvOrExit } from '@llmgw/config';
import { createLogger, exitOnSignals, makeInstanceId, startTracing } from '@llmgw/observability';
import { ApiEnvSchema } from './env.ts';
import { startApiServer } from './server.ts';

const env = loadEnvOrExit(ApiEnvSchema);
const instanceId = makeInstanceId('api', env.INSTANCE_ID);
const log = createLogger({ service: 'api', instance: instanceId, level: env.LOG_LEVEL });
// Before anything makes a span: off (no OTLP endpoint) it starts nothing.
const tracing = startTracing({ ...env.tracing, instanceId });
if (tracing.enabled) log.info({ service_name: env.tracing.serviceName }, 'tracing_enabled');

const server = await startApiServer(env, log, instanceId).catch((err: Error) => {
  log.fatal({ err: err.message }, 'startup_failed');
  process.exit(1);
});

// Traces last: the spans of the requests that the shutdown ended are exported too.
exitOnSignals(log, () => server.close(env.SHUTDOWN_GRACE_MS).finally(() => tracing.shutdown()));
