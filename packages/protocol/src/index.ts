export * from './events.ts';
export * from './job.ts';
export * from './worker-info.ts';
