export * from './delete-keys.ts';
export * from './free-port.ts';
export * from './process-groups.ts';
export * from './redis-server.ts';
export * from './spawn-service.ts';
export * from './sse-client.ts';
export * from './until.ts';
