/**
 * Job ids cancelled through the control channel, remembered for a while: a cancel can arrive
 * between BullMQ moving a job to active and the processor registering its AbortController, and
 * the processor checks here before it calls the backend.
 */
export class Cancellations {
  private readonly ids = new Map<string, number>();

  constructor(private readonly ttlMs = 60_000) {}

  add(id: string, now = Date.now()): void {
    this.ids.set(id, now + this.ttlMs);
    if (this.ids.size > 1000) this.sweep(now);
  }

  has(id: string, now = Date.now()): boolean {
    const until = this.ids.get(id);
    return until !== undefined && until > now;
  }

  private sweep(now: number): void {
    for (const [id, until] of this.ids) if (until <= now) this.ids.delete(id);
  }
}
