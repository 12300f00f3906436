import { SimError } from './errors.ts';
import { FAULT_TYPES, type FaultType } from './options.ts';

export const FAULT_HEADER = 'x-sim-error';

/**
 * Decides which failure, if any, a request gets: `X-Sim-Error: <type>` forces one for that request
 * whatever the rate; otherwise a random type from `types` with probability `rate`.
 */
export class FaultInjector {
  constructor(
    private readonly rate: number,
    private readonly types: readonly FaultType[],
    private readonly onInject: (type: FaultType) => void,
    private readonly random: () => number = Math.random,
  ) {}

  pick(header: string | string[] | undefined): FaultType | null {
    const forced = Array.isArray(header) ? header[0] : header;
    let type: FaultType | null = null;
    if (forced !== undefined && forced !== '') {
      const t = forced.trim().toLowerCase();
      if (!isFaultType(t)) {
        throw new SimError('bad_request', `X-Sim-Error must be one of ${FAULT_TYPES.join(', ')}`);
      }
      type = t;
    } else if (this.rate > 0 && this.random() < this.rate) {
      type = this.types[Math.floor(this.random() * this.types.length)] ?? null;
    }
    if (type !== null) this.onInject(type);
    return type;
  }

  /** How many tokens a `drop` stream sends before its connection is cut: 1..5, fewer than `limit`. */
  dropAfter(limit: number): number {
    return Math.max(0, Math.min(limit - 1, 1 + Math.floor(this.random() * 5)));
  }
}

function isFaultType(s: string): s is FaultType {
  return (FAULT_TYPES as readonly string[]).includes(s);
}

/** The faults answered with an HTTP error instead of a generation. */
export function throwIfErrorFault(type: FaultType | null): void {
  switch (type) {
    case 'server_error':
      throw new SimError('server_error', 'Simulated internal server error (fault injection)');
    case 'rate_limit':
      throw new SimError('rate_limit', 'Simulated rate limit (fault injection)', {
        headers: { 'retry-after': '1' },
      });
    case 'bad_request':
      throw new SimError('bad_request', 'Simulated bad request (fault injection)');
    default:
      return;
  }
}
