import { loadEnvOrExit } from '@llmgw/config';
import { createLogger, exitOnSignals, makeInstanceId, startTracing } from '@llmgw/observability';
import { WorkerEnvSchema } from './env.ts';
import { WorkerService, workerOptionsFromEnv } from './service.ts';

const env = loadEnvOrExit(WorkerEnvSchema);
const instanceId = makeInstanceId('worker', env.INSTANCE_ID);
const log = createLogger({ service: 'worker', instance: instanceId, level: env.LOG_LEVEL });
// Before anything makes a span: off (no OTLP endpoint) it starts nothing.
const tracing = startTracing({ ...env.tracing, instanceId });
if (tracing.enabled) log.info({ service_name: env.tracing.serviceName }, 'tracing_enabled');

const service = await WorkerService.start(workerOptionsFromEnv(env, log, instanceId)).catch((err: Error) => {
  log.fatal({ err: err.message }, 'startup_failed');
  process.exit(1);
});

// Traces last: the spans of the jobs that the shutdown ended are exported too.
exitOnSignals(log, () => service.close(env.SHUTDOWN_GRACE_MS).finally(() => tracing.shutdown()));
