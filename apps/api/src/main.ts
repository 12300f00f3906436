import { loadEnvOrExit } from '@llmgw/config';
import { createLogger, exitOnSignals, makeInstanceId } from '@llmgw/observability';
import { ApiEnvSchema } from './env.ts';
import { startApiServer } from './server.ts';

const env = loadEnvOrExit(ApiEnvSchema);
const instanceId = makeInstanceId('api', env.INSTANCE_ID);
const log = createLogger({ service: 'api', instance: instanceId, level: env.LOG_LEVEL });

const server = await startApiServer(env, log, instanceId).catch((err: Error) => {
  log.fatal({ err: err.message }, 'startup_failed');
  process.exit(1);
});

exitOnSignals(log, () => server.close(env.SHUTDOWN_GRACE_MS));
