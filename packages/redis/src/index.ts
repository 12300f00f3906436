export * from './connection.ts';
export * from './inflight.ts';
export * from './job-events.ts';
export * from './keys.ts';
export * from './limits.ts';
export * from './scripts.ts';
export * from './telemetry.ts';
export * from './usage.ts';
