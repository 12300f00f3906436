export * from './deltas.ts';
export * from './events.ts';
export * from './finish-reasons.ts';
export * from './job.ts';
export * from './messages.ts';
export * from './worker-info.ts';
