import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/**
 * A process's identity in logs, metrics and Redis (reply channel, worker heartbeat).
 * Unique per process even when two share a host name, and free of `:` so it can sit inside keys.
 */
export function makeInstanceId(service: string, explicit?: string): string {
  if (explicit) return explicit;
  const host = hostname()
    .replace(/[^A-Za-z0-9_.-]/g, '-')
    .slice(0, 40);
  return `${service}-${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
}
