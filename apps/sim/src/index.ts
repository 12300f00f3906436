export {
  FAULT_TYPES,
  type FaultType,
  parseOptions,
  REASONING_FIELDS,
  type ReasoningField,
  resolveOptions,
  type SimOptions,
} from './options.ts';
export type { LoggedRequest } from './request-log.ts';
export { type Simulator, startSimulator } from './server.ts';
export type { SimStats, SimStatsBody } from './stats.ts';
