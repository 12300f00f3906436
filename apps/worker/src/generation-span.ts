import { type Attributes, failSpan, type Span, SpanKind, tracer } from '@llmgw/observability';
import type { ChatJob, Usage } from '@llmgw/protocol';
import type { Backend, GenerateResult } from './backends/backend.ts';

/**
 * The backend call of one attempt as a GenAI client span (OpenTelemetry's GenAI semantic
 * conventions): `chat <model>` (or `text_completion <model>`), a child of BullMQ's `process`
 * span, so of the request that enqueued the job. The first token is an event and
 * `gen_ai.response.time_to_first_chunk` (seconds); usage and finish reason close it. No prompt
 * or answer text is recorded: they are user data. Tracing off: a no-op span.
 */
export class GenerationSpan {
  private readonly span: Span;
  private readonly started = performance.now();
  private readonly recording: boolean;
  private firstToken = false;

  constructor(job: ChatJob, jobId: string, attempt: number, backend: Backend) {
    const operation = job.kind === 'completion' ? 'text_completion' : 'chat';
    const { params } = job;
    const server = serverOf(backend.baseURL);
    const attributes: Attributes = {
      'gen_ai.operation.name': operation,
      'gen_ai.provider.name': backend.provider,
      'gen_ai.request.model': job.model,
      'gen_ai.request.max_tokens': params.max_tokens,
      ...(params.temperature !== undefined && { 'gen_ai.request.temperature': params.temperature }),
      ...(params.top_p !== undefined && { 'gen_ai.request.top_p': params.top_p }),
      ...(params.seed !== undefined && { 'gen_ai.request.seed': params.seed }),
      ...(params.stop !== undefined && { 'gen_ai.request.stop_sequences': params.stop }),
      ...server,
      'llmgw.job_id': jobId,
      'llmgw.attempt': attempt,
      'llmgw.request_id': job.requestId,
    };
    this.span = tracer.startSpan(`${operation} ${job.model}`, { kind: SpanKind.CLIENT, attributes });
    this.recording = this.span.isRecording();
  }

  /** Called with every delta: only the first one is recorded. */
  onDelta(): void {
    if (this.firstToken || !this.recording) return;
    this.firstToken = true;
    this.span.addEvent('first_token');
    this.span.setAttribute('gen_ai.response.time_to_first_chunk', (performance.now() - this.started) / 1000);
  }

  done(result: GenerateResult): void {
    if (!this.recording) return;
    this.usage(result.usage);
    this.span.setAttribute('gen_ai.response.finish_reasons', [result.finishReason]);
    this.span.end();
  }

  /** The attempt failed (`requeued`: it goes to another worker; the trace shows both). */
  failed(type: string, message: string, usage: Usage | undefined): void {
    if (!this.recording) return;
    if (usage) this.usage(usage);
    failSpan(this.span, type, message);
    this.span.end();
  }

  private usage(u: Usage): void {
    this.span.setAttributes({
      'gen_ai.usage.input_tokens': u.promptTokens,
      'gen_ai.usage.output_tokens': u.completionTokens,
    });
  }
}

function serverOf(baseURL: string): Attributes {
  try {
    const u = new URL(baseURL);
    const port = u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port);
    return { 'server.address': u.hostname, 'server.port': port };
  } catch {
    return {};
  }
}
