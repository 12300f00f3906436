export { FAULT_TYPES, type FaultType, parseOptions, resolveOptions, type SimOptions } from './options.ts';
export { type Simulator, startSimulator } from './server.ts';
export type { SimStats } from './stats.ts';
