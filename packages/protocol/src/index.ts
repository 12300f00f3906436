export * from './events.ts';
export * from './job.ts';
