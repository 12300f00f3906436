import type { Logger } from 'pino';

/** One step of a process's shutdown: a name for the log, and the work. */
export interface ShutdownStep {
  name: string;
  run(): unknown;
}

/**
 * Runs a shutdown written as a list of steps, in order, each awaited and in its own try/catch
 * (bullmq's `Worker.close()`): a step that throws is logged (`shutdown_step_failed`, with the
 * step's name) and the next one still runs, so one broken connection never leaves the others
 * open. Resolves with the names of the steps that failed.
 */
export async function runShutdown(log: Logger, steps: readonly ShutdownStep[]): Promise<string[]> {
  const failed: string[] = [];
  for (const step of steps) {
    const started = Date.now();
    try {
      await step.run();
      log.debug({ step: step.name, ms: Date.now() - started }, 'shutdown_step');
    } catch (err) {
      failed.push(step.name);
      log.warn({ step: step.name, err: (err as Error).message }, 'shutdown_step_failed');
    }
  }
  return failed;
}
