import type { ServerResponse } from 'node:http';
import { SimError } from './errors.ts';
import type { FaultInjector } from './faults.ts';
import type { FinishReason, SimMetrics } from './metrics.ts';
import type { SimOptions } from './options.ts';
import { OutputText } from './output-text.ts';
import type { Lease, Scheduler } from './scheduler.ts';
import type { StatsCounters } from './stats.ts';
import { fnv1a, naturalLength, TokenSource } from './text.ts';
import { argumentPieces, type ToolCallPlan } from './tool-calls.ts';

export interface GenerationRequest {
  /** `performance.now()` when the request arrived: TTFT and e2e latency include the queue wait. */
  arrival: number;
  promptTokens: number;
  /** Prompt (+ seed) hash: picks the tokens and the natural length. */
  hash: number;
  maxTokens: number | null;
  /** vLLM extension: ignore EOS and generate until `maxTokens` (or the context is full). Text answers only. */
  ignoreEos: boolean;
  /** Stop strings; they apply to the answer text, not to reasoning or tool-call arguments. */
  stop: readonly string[];
  /** Reasoning tokens generated before the answer; 0 = the model does not reason. */
  reasoningTokens: number;
  /** When non-empty the answer is these tool calls instead of text. */
  toolCalls: readonly ToolCallPlan[];
  /**
   * A structured output (`response_format`): the answer is this JSON text instead of words, streamed
   * in pieces like tool-call arguments, its natural length their count. Null: a free text answer.
   */
  json?: string | null;
}

/** A tool call as far as it was generated (the arguments are cut short when max_tokens ran out). */
export interface GeneratedToolCall {
  id: string;
  name: string;
  arguments: string;
}

export interface GenerationResult {
  finishReason: FinishReason;
  stopSequence: string | null;
  /** Every generated token: reasoning, answer text and tool-call pieces. */
  completionTokens: number;
  /** The whole reasoning text ('' when the model did not reason). */
  reasoning: string;
  /** The whole answer text (before any stop string). */
  text: string;
  /** Output not yet passed to `token()` (held back for stop strings); the last chunk carries it. */
  tail: string;
  /** Whether the answer phase began: false when the budget ran out while reasoning. */
  answered: boolean;
  /** The tool calls begun, in order; complete unless `finishReason` is `length`. */
  toolCalls: GeneratedToolCall[];
}

/**
 * How a wire format receives a generation. Every generated token reaches exactly one of
 * `reasoning`, `token` or `toolCall`, at its own tick.
 */
export interface GenerationSink {
  /** One reasoning token. */
  reasoning(text: string): void;
  /**
   * One answer token: `text` is what may be sent now, '' while held back for stop strings (or when
   * this token completed a stop string); `token` is the token itself, for logprobs.
   */
  token(text: string, token: string): void;
  /** One piece of tool call `index`'s arguments; `first` = the call begins with this piece. */
  toolCall(index: number, call: ToolCallPlan, piece: string, first: boolean): void;
  finish(result: GenerationResult): void;
  drop(): void;
}

/** One tick of a tool-call answer. */
interface ToolPiece {
  call: number;
  text: string;
  first: boolean;
}

const jitter = (base: number, spread: number): number =>
  spread > 0 ? Math.max(0, base + (Math.random() * 2 - 1) * spread) : base;

/**
 * One sequence: waits for a slot, then emits a token after TTFT and every ITL after that on its
 * own timer. The schedule is kept against absolute target times so timer lateness does not
 * accumulate into a slower stream; when far behind it restarts from now instead of bursting.
 * Tokens come in phases: `reasoningTokens` of reasoning, then the answer (text, or tool-call
 * argument pieces), `limit` tokens in all.
 */
export class Generation {
  private readonly tokens: TokenSource;
  private readonly thoughts: TokenSource;
  private readonly output: OutputText;
  private readonly toolCalls: GeneratedToolCall[] = [];
  private reasoning = '';
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
    /** The tool-call answer, one entry per tick; null for a text answer. */
    private readonly pieces: readonly ToolPiece[] | null,
    /** A structured (JSON) text answer, one token per tick; null for free text. */
    private readonly jsonPieces: readonly string[] | null = null,
  ) {
    this.tokens = new TokenSource(req.hash);
    // Its own stream, so a reasoning model's answer is the same text a plain model gives.
    this.thoughts = new TokenSource(fnv1a('reasoning', req.hash));
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
    this.engine.stats.abortSeen();
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
    if (!this.emit()) {
      this.finish('stop');
      return;
    }
    if (this.count === this.dropAfter) {
      this.drop();
      return;
    }
    if (this.count >= this.limit) {
      const eos = this.req.ignoreEos && this.pieces === null && this.jsonPieces === null;
      this.finish(eos || this.limit < this.natural ? 'length' : 'stop');
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

  /** Generates token number `count` and hands it to the sink; false = a stop string ended the answer. */
  private emit(): boolean {
    const sink = this.sink!;
    const answerAt = this.count - this.req.reasoningTokens;
    if (answerAt <= 0) {
      const text = this.thoughts.next();
      this.reasoning += text;
      sink.reasoning(text);
      return true;
    }
    if (this.pieces !== null) {
      const piece = this.pieces[answerAt - 1]!;
      const plan = this.req.toolCalls[piece.call]!;
      if (piece.first) this.toolCalls.push({ id: plan.id, name: plan.name, arguments: '' });
      this.toolCalls[piece.call]!.arguments += piece.text;
      sink.toolCall(piece.call, plan, piece.text, piece.first);
      return true;
    }
    const token = this.jsonPieces !== null ? this.jsonPieces[answerAt - 1]! : this.tokens.next();
    const text = this.output.push(token);
    const stopped = this.output.stopSequence !== null;
    sink.token(stopped ? '' : text, token);
    return !stopped;
  }

  private finish(finishReason: FinishReason): void {
    this.end();
    const { stats, metrics } = this.engine;
    stats.completed++;
    metrics.recordSuccess(finishReason, (performance.now() - this.req.arrival) / 1000);
    const result: GenerationResult = {
      finishReason,
      stopSequence: this.output.stopSequence,
      completionTokens: this.count,
      reasoning: this.reasoning,
      text: this.output.text,
      tail: this.output.rest(),
      answered: this.count > this.req.reasoningTokens,
      toolCalls: this.toolCalls,
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
   * Checks the context window like vLLM and fixes the output length: min(natural length,
   * max_tokens ?? max-model-len − prompt), or exactly that budget with ignore_eos. The natural length
   * is the reasoning plus the answer: 16..256 text tokens (or `--output-tokens`), or every piece of
   * the tool calls' arguments or of the structured output's JSON (which `ignore_eos` does not lengthen).
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
    if (req.toolCalls.length > 0) {
      const pieces: ToolPiece[] = [];
      req.toolCalls.forEach((call, i) => {
        argumentPieces(call.arguments, fnv1a(call.name, req.hash)).forEach((text, j) => {
          pieces.push({ call: i, text, first: j === 0 });
        });
      });
      const natural = req.reasoningTokens + pieces.length;
      return new Generation(this, req, Math.min(natural, budget), natural, pieces);
    }
    if (req.json != null) {
      const pieces = argumentPieces(req.json, fnv1a('json', req.hash));
      const natural = req.reasoningTokens + pieces.length;
      return new Generation(this, req, Math.min(natural, budget), natural, null, pieces);
    }
    const natural = req.reasoningTokens + naturalLength(req.hash, outputTokens);
    const limit = req.ignoreEos ? budget : Math.min(natural, budget);
    return new Generation(this, req, limit, natural, null);
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
      this.stats.abortSeen();
      this.metrics.recordAborted();
    });
  }

  abortAll(): void {
    for (const generation of [...this.active]) generation.abort();
  }
}
