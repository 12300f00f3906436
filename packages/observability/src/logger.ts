import { type Logger, pino } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  service: 'api' | 'worker' | 'sim' | 'cli' | 'start';
  instance: string;
  level: string;
  /** Where lines go; stdout by default (tests pass a stream to read them back). */
  destination?: NodeJS.WritableStream;
}

/**
 * Paths that must never reach a log line: credentials always; prompt text unless LOG_PROMPTS=1
 * (callers simply do not pass messages then — the redaction is the safety net).
 */
export const REDACT_PATHS = [
  'authorization',
  'headers.authorization',
  'headers["x-api-key"]',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'apiKey',
  'api_key',
  'key',
];

/** One JSON object per line on stdout, with `service` and `instance` on every line. */
export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      level: opts.level,
      base: { service: opts.service, instance: opts.instance },
      timestamp: pino.stdTimeFunctions.isoTime,
      messageKey: 'msg',
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    opts.destination ?? process.stdout,
  );
}
