/** A request body as it reached the simulator, for tests that assert what a gateway forwarded. */
export interface LoggedRequest {
  path: string;
  /** The parsed JSON body, unvalidated and unchanged (unknown fields included). */
  body: unknown;
}

/** How many bodies are kept; older ones are dropped first. */
export const REQUEST_LOG_SIZE = 100;

/** The last {@link REQUEST_LOG_SIZE} generation request bodies, oldest first. */
export class RequestLog {
  private entries: LoggedRequest[] = [];

  record(path: string, body: unknown): void {
    this.entries.push({ path, body });
    if (this.entries.length > REQUEST_LOG_SIZE) this.entries.shift();
  }

  list(): LoggedRequest[] {
    return [...this.entries];
  }

  clear(): void {
    this.entries = [];
  }
}
