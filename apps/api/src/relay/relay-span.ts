import { failSpan, type Span, tracer } from '@llmgw/observability';
import type { JobEvent } from '@llmgw/protocol';
import type { SubmittedChat } from '../queue/submitted-chat.ts';

/**
 * The `relay` span: a job's answer on its way to the client, from the subscription to the last
 * frame written (or the whole body collected), a child of the request's span. Its events mark
 * the job's start on a worker and the first token the client got; its end carries the usage
 * and the finish reason, or the error the client saw. Tracing off: a no-op span, and each
 * event is one check.
 */
export class RelaySpan {
  private readonly span: Span;
  private readonly recording: boolean;
  private firstToken = false;

  constructor(chat: SubmittedChat, mode: 'stream' | 'whole') {
    this.span = tracer.startSpan('relay', {
      attributes: {
        'llmgw.job_id': chat.jobId,
        'gen_ai.request.model': chat.model,
        'llmgw.relay.mode': mode,
        'llmgw.relay.follower': chat.follower === true,
      },
    });
    this.recording = this.span.isRecording();
  }

  onEvent(ev: JobEvent): void {
    if (!this.recording) return;
    if (ev.type === 'delta') {
      if (!this.firstToken) {
        this.firstToken = true;
        this.span.addEvent('first_token');
      }
    } else if (ev.type === 'started') {
      this.span.addEvent('job_started', { 'llmgw.attempt': ev.attempt });
    } else if (ev.type === 'done') {
      this.span.setAttributes({
        'gen_ai.usage.input_tokens': ev.usage.promptTokens,
        'gen_ai.usage.output_tokens': ev.usage.completionTokens,
        'gen_ai.response.finish_reasons': [ev.finishReason],
      });
    } else if (ev.type === 'error') {
      failSpan(this.span, ev.error, ev.message);
    }
  }

  /** The client left before the end (its job is abandoned). */
  clientGone(): void {
    if (this.recording) failSpan(this.span, 'client_closed_request');
  }

  end(): void {
    this.span.end();
  }
}
