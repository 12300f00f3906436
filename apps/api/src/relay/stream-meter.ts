import type { JobEvent } from '@llmgw/protocol';
import type { ApiMetrics } from '../metrics.ts';

/**
 * Measures one request's generation as the client sees it, from the events relayed to it: queue
 * wait, time to first token, gaps between tokens, end-to-end latency, token counts, errors.
 * Shared by the streaming relay and the non-streaming collector.
 */
export class StreamMeter {
  private lastTokenAt = 0;
  /** ms from request received to first token, once known. */
  ttftMs: number | undefined;
  queueWaitMs: number | undefined;
  /** The bounded `model` label (the model was admitted, so normally itself). */
  private readonly model: string;

  constructor(
    private readonly metrics: ApiMetrics,
    model: string,
    /** performance.now() when the request arrived. */
    private readonly requestStart: number,
    private readonly enqueuedAt: number,
  ) {
    this.model = metrics.modelLabel(model);
  }

  onEvent(ev: JobEvent, at = performance.now()): void {
    const m = this.metrics;
    switch (ev.type) {
      case 'started':
        this.queueWaitMs = Math.max(0, Date.now() - this.enqueuedAt);
        m.queueWait.observe({ model: this.model }, this.queueWaitMs / 1000);
        break;
      case 'delta':
        if (this.ttftMs === undefined) {
          this.ttftMs = at - this.requestStart;
          m.ttft.observe({ model: this.model }, this.ttftMs / 1000);
        } else {
          m.interToken.observe({ model: this.model }, (at - this.lastTokenAt) / 1000);
        }
        this.lastTokenAt = at;
        break;
      case 'done':
        m.e2e.observe({ model: this.model }, (at - this.requestStart) / 1000);
        m.tokens.inc({ model: this.model, type: 'input' }, ev.usage.promptTokens);
        m.tokens.inc({ model: this.model, type: 'output' }, ev.usage.completionTokens);
        break;
      case 'error':
        m.errors.inc({ model: this.model, error_type: ev.error });
        if (ev.usage) {
          m.tokens.inc({ model: this.model, type: 'input' }, ev.usage.promptTokens);
          m.tokens.inc({ model: this.model, type: 'output' }, ev.usage.completionTokens);
        }
        break;
    }
  }
}
