export * from './instance-id.ts';
export * from './logger.ts';
