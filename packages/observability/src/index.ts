export * from './instance-id.ts';
export * from './logger.ts';
export * from './metrics.ts';
export * from './shutdown.ts';
export * from './signals.ts';
export * from './tracing.ts';
