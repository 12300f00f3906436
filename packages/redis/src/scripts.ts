import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/**
 * Lua scripts, one file each under ./lua, named `<name>-<numKeys>.lua` (the header of each file
 * lists KEYS, ARGV and what it returns). Registered with ioredis `defineCommand`, which runs them
 * by SHA and loads them on first use.
 */
const SCRIPTS = [
  'rate-limit-1',
  'quota-reserve-1',
  'quota-settle-1',
  'token-bucket-take-1',
  'token-bucket-settle-1',
  'inflight-admit-2',
  'inflight-start-2',
  'inflight-renew-1',
  'inflight-end-2',
  'job-record-1',
  'user-jobs-add-1',
  'model-forget-3',
  'job-event-2',
  'batch-result-2',
  'usage-record-2',
] as const;
type ScriptName = (typeof SCRIPTS)[number];

const source = (name: ScriptName) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');
const commandName = (name: ScriptName) =>
  name.replace(/-\d+$/, '').replace(/-(\w)/g, (_, c: string) => c.toUpperCase());

interface ScriptCommands {
  rateLimit(
    key: string,
    limit: number,
    windowMs: number,
    member: string,
  ): Promise<[number, number, number, number]>;
  quotaReserve(key: string, amount: number, limit: number, expireAt: number): Promise<[number, number]>;
  quotaSettle(key: string, delta: number): Promise<number>;
  tokenBucketTake(
    key: string,
    amount: number,
    limit: number,
    windowMs: number,
  ): Promise<[number, number, number, number]>;
  tokenBucketSettle(key: string, delta: number): Promise<number>;
  inflightAdmit(
    waitingKey: string,
    runningKey: string,
    maxWaiting: number,
    maxConcurrent: number,
    member: string,
    leaseMs: number,
  ): Promise<[number, number, number]>;
  inflightStart(waitingKey: string, runningKey: string, member: string, leaseMs: number): Promise<number>;
  inflightRenew(runningKey: string, leaseMs: number, ...members: string[]): Promise<number>;
  inflightEnd(waitingKey: string, runningKey: string, member: string): Promise<number>;
  jobRecord(recordKey: string, ttlMs: number, ...fieldsAndValues: (string | number)[]): Promise<number>;
  userJobsAdd(
    indexKey: string,
    createdAt: number,
    jobId: string,
    horizonMs: number,
    cap: number,
  ): Promise<number>;
  jobEvent(
    eventsKey: string,
    recordKey: string,
    raw: string,
    channel: string,
    maxEvents: number,
    renewTtlMs: number,
    sharded: 0 | 1,
  ): Promise<number>;
  usageRecord(
    ledgerKey: string,
    markerKey: string,
    fieldPrefix: string,
    promptTokens: number,
    completionTokens: number,
    expireAt: number,
    markerTtlS: number,
  ): Promise<number>;
  batchResult(
    resultsKey: string,
    batchKey: string,
    index: number,
    result: string,
    counter: 'completed' | 'failed' | 'cancelled',
  ): Promise<[number, number, number, number]>;
  modelForget(
    modelsKey: string,
    seenKey: string,
    workersKey: string,
    model: string,
    forgetAfterMs: number,
  ): Promise<number>;
}

const defined = new WeakSet<Redis>();

/** The connection with our scripts defined on it (idempotent). */
export function withScripts(redis: Redis): Redis & ScriptCommands {
  if (!defined.has(redis)) {
    for (const name of SCRIPTS) {
      const numberOfKeys = Number(name.slice(name.lastIndexOf('-') + 1));
      redis.defineCommand(commandName(name), { numberOfKeys, lua: source(name) });
    }
    defined.add(redis);
  }
  return redis as Redis & ScriptCommands;
}
