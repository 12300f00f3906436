import { loadEnvOrExit } from '@llmgw/config';
import { createLogger, makeInstanceId } from '@llmgw/observability';
import { ApiEnvSchema } from './env.ts';
import { startApiServer } from './server.ts';

const env = loadEnvOrExit(ApiEnvSchema);
const instanceId = makeInstanceId('api', env.INSTANCE_ID);
const log = createLogger({ service: 'api', instance: instanceId, level: env.LOG_LEVEL });

const server = await startApiServer(env, log, instanceId).catch((err: Error) => {
  log.fatal({ err: err.message }, 'startup_failed');
  process.exit(1);
});

let signals = 0;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (++signals > 1) process.exit(1);
    log.info({ signal: sig }, 'shutdown_started');
    server.close(env.SHUTDOWN_GRACE_MS).then(() => process.exit(0));
  });
}
