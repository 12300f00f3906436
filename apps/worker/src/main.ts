import { loadEnvOrExit } from '@llmgw/config';
import { createLogger, exitOnSignals, makeInstanceId } from '@llmgw/observability';
import { WorkerEnvSchema } from './env.ts';
import { WorkerService, workerOptionsFromEnv } from './service.ts';

const env = loadEnvOrExit(WorkerEnvSchema);
const instanceId = makeInstanceId('worker', env.INSTANCE_ID);
const log = createLogger({ service: 'worker', instance: instanceId, level: env.LOG_LEVEL });

const service = await WorkerService.start(workerOptionsFromEnv(env, log, instanceId)).catch((err: Error) => {
  log.fatal({ err: err.message }, 'startup_failed');
  process.exit(1);
});

exitOnSignals(log, () => service.close(env.SHUTDOWN_GRACE_MS));
