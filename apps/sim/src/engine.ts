import type { ServerResponse } from 'node:http';
import { SimError } from './errors.ts';
import type { FaultInjector } from './faults.ts';
import type { FinishReason, SimMetrics } from './metrics.ts';
import type { SimOptions } from './options.ts';
import { OutputText } from './output-text.ts';
import type { Lease, Scheduler } from './scheduler.ts';
import type { StatsCounters } from './stats.ts';
import { naturalLength, TokenSource } from './text.ts';

export interface GenerationRequest {
  /** `performance.now()` when the request arrived: TTFT and e2e latency include the queue wait. */
  arrival: number;
  promptTokens: number;
  /** Prompt (+ seed) hash: picks the tokens and the natural length. */
  hash: number;
  maxTokens: number | null;
  /** vLLM extension: ignore EOS and generate until `maxTokens` (or the context is full). */
  ignoreEos: boolean;
  stop: readonly string[];
}

export interface GenerationResult {
  finishReason: FinishReason;
  stopSequence: string | null;
  completionTokens: number;
  /** The whole output (before any stop string). */
  text: string;
  /** Output not yet passed to `token()` (held back for stop strings); the last chunk carries it. */
  tail: string;
}

/** How a wire format receives a generation; `token` is called only with non-empty text. */
export interface GenerationSink {
  token(text: string): void;
  finish(result: GenerationResult): void;
  drop(): void;
}

const jitter = (base: number, spread: number): number =>
  spread > 0 ? Math.max(0, base + (Math.random() * 2 - 1) * spread) : base;

/**
 * One sequence: waits for a slot, then emits a token after TTFT and every ITL after that on its
 * own timer. The schedule is kept against absolute target times so timer lateness does not
 * accumulate into a slower stream; when far behind it restarts from now instead of bursting.
 */
export class Generation {
  private readonly tokens: TokenSource;
  private readonly output: OutputText;
  private dropAfter = -1;
  private sink: GenerationSink | null = null;
  private lease: Lease | null = null;
  private timer: NodeJS.Timeout | undefined;
  private count = 0;
  private lastAt = 0;
  private nextAt = 0;
  private done = false;

  constructor(
    private readonly engine: Engine,
    private readonly req: GenerationRequest,
    readonly limit: number,
    private readonly natural: number,
  ) {
    this.tokens = new TokenSource(req.hash);
    this.output = new OutputText(req.stop);
  }

  /** Queues for a slot; the sink is fed from then on. `drop` = fault injection: cut after a few tokens. */
  begin(sink: GenerationSink, drop = false): void {
    this.sink = sink;
    if (drop) this.dropAfter = this.engine.faults.dropAfter(this.limit);
    this.engine.active.add(this);
    this.lease = this.engine.scheduler.acquire(this.onSlot);
  }

  /** The client went away: stop at once and free the slot (or the place in the queue). */
  abort(): void {
    if (this.done) return;
    this.end();
    this.engine.stats.aborted++;
    this.engine.metrics.recordAborted();
  }

  private readonly onSlot = (): void => {
    if (this.done) return;
    const { options, metrics } = this.engine;
    metrics.recordPrompt(this.req.promptTokens);
    if (this.dropAfter === 0) {
      this.drop();
      return;
    }
    const ttft = jitter(options.ttftMs, options.ttftJitterMs);
    this.nextAt = performance.now() + ttft;
    this.timer = setTimeout(this.tick, Math.round(ttft));
  };

  private readonly tick = (): void => {
    const { options, metrics } = this.engine;
    const now = performance.now();
    if (this.count === 0) metrics.observeTtft((now - this.req.arrival) / 1000);
    else metrics.observeItl((now - this.lastAt) / 1000);
    this.lastAt = now;
    this.count++;
    const text = this.output.push(this.tokens.next());
    if (this.output.stopSequence !== null) {
      this.finish('stop');
      return;
    }
    if (text !== '') this.sink!.token(text);
    if (this.count === this.dropAfter) {
      this.drop();
      return;
    }
    if (this.count >= this.limit) {
      this.finish(this.req.ignoreEos || this.limit < this.natural ? 'length' : 'stop');
      return;
    }
    const itl = jitter(options.itlMs, options.itlJitterMs);
    this.nextAt += itl;
    const t = performance.now();
    let delay = this.nextAt - t;
    if (delay < -itl) this.nextAt = t;
    // Whole milliseconds: Node keeps one timer list per distinct duration.
    delay = delay > 0 ? Math.round(delay) : 0;
    this.timer = setTimeout(this.tick, delay);
  };

  private finish(finishReason: FinishReason): void {
    this.end();
    const { stats, metrics } = this.engine;
    stats.completed++;
    metrics.recordSuccess(finishReason, (performance.now() - this.req.arrival) / 1000);
    const result: GenerationResult = {
      finishReason,
      stopSequence: this.output.stopSequence,
      completionTokens: this.count,
      text: this.output.text,
      tail: this.output.rest(),
    };
    this.sink!.finish(result);
  }

  private drop(): void {
    this.end();
    this.sink!.drop();
  }

  private end(): void {
    this.done = true;
    clearTimeout(this.timer);
    this.lease?.release();
    this.engine.active.delete(this);
    this.engine.metrics.recordGenerated(this.count);
  }
}

export class Engine {
  /** Generations queued or running, so `close()` can stop them. */
  readonly active = new Set<Generation>();

  constructor(
    readonly options: SimOptions,
    readonly scheduler: Scheduler,
    readonly metrics: SimMetrics,
    readonly stats: StatsCounters,
    readonly faults: FaultInjector,
  ) {}

  /**
   * Checks the context window like vLLM and fixes the output length:
   * min(natural length, max_tokens ?? max-model-len − prompt), or exactly that budget with ignore_eos.
   */
  prepare(req: GenerationRequest): Generation {
    const { maxModelLen, outputTokens } = this.options;
    const { promptTokens, maxTokens } = req;
    if (maxTokens === null && promptTokens >= maxModelLen) {
      throw new SimError(
        'bad_request',
        `This model's maximum context length is ${maxModelLen} tokens. However, your request has ${promptTokens} input tokens. Please reduce the length of the input messages.`,
      );
    }
    if (maxTokens !== null && promptTokens + maxTokens > maxModelLen) {
      throw new SimError(
        'bad_request',
        `This model's maximum context length is ${maxModelLen} tokens. However, you requested ${promptTokens + maxTokens} tokens (${promptTokens} in the messages, ${maxTokens} in the completion). Please reduce the length of the messages or completion.`,
      );
    }
    const budget = maxTokens ?? maxModelLen - promptTokens;
    const natural = naturalLength(req.hash, outputTokens);
    return new Generation(this, req, req.ignoreEos ? budget : Math.min(natural, budget), natural);
  }

  /**
   * Starts `generation` for the response `res` and stops it when the client disconnects first.
   * `close` also fires after a normal end; `writableFinished` tells the two apart.
   */
  run(res: ServerResponse, generation: Generation, sink: GenerationSink, drop: boolean): void {
    generation.begin(sink, drop);
    if (res.socket === null || res.socket.destroyed) {
      generation.abort();
      return;
    }
    res.once('close', () => {
      if (!res.writableFinished) generation.abort();
    });
  }

  /** Fault `timeout`: accept the request and never answer; the client giving up counts as an abort. */
  hang(res: ServerResponse): void {
    res.once('close', () => {
      this.stats.aborted++;
      this.metrics.recordAborted();
    });
  }

  abortAll(): void {
    for (const generation of [...this.active]) generation.abort();
  }
}
