import { EnvError } from '@llmgw/config';
import { parseOptions, type SimOptions, usage } from './options.ts';
import { startSimulator } from './server.ts';

const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(usage());
  process.exit(0);
}

let options: SimOptions;
try {
  options = parseOptions(argv, process.env);
} catch (err) {
  if (err instanceof EnvError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  throw err;
}

// pino's order, so LOG_LEVEL means the same here as in the api and the worker.
const SEVERITY = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };
const log = (level: 'info' | 'error', msg: string, fields: Record<string, unknown>) => {
  if (SEVERITY[level] < SEVERITY[options.logLevel]) return;
  process.stdout.write(`${JSON.stringify({ level, service: 'sim', msg, ...fields })}\n`);
};

try {
  const sim = await startSimulator(options);
  log('info', 'sim_listening', {
    url: sim.url,
    model: options.models.join(','),
    maxNumSeqs: options.maxNumSeqs,
    ttftMs: options.ttftMs,
    itlMs: options.itlMs,
  });
  const shutdown = () => {
    void sim.close().then(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
} catch (err) {
  log('error', 'sim_start_failed', { err: (err as Error).message });
  process.exit(1);
}
