/**
 * Generated text with stop strings applied the way vLLM's incremental detokenizer does: the stop
 * string is not part of the output, and the last (longest stop string − 1) characters are held
 * back while streaming, so a client never receives the beginning of a stop string.
 */
export class OutputText {
  text = '';
  /** The stop string that ended generation, if any. */
  stopSequence: string | null = null;
  private emitted = 0;
  private readonly holdback: number;

  constructor(private readonly stops: readonly string[]) {
    let longest = 0;
    for (const s of stops) longest = Math.max(longest, s.length);
    this.holdback = longest > 0 ? longest - 1 : 0;
  }

  /** Appends one token and returns the text that may be sent now ('' when held back or stopped). */
  push(token: string): string {
    const before = this.text.length;
    this.text += token;
    if (this.stops.length === 0) {
      this.emitted = this.text.length;
      return token;
    }
    // A match must end inside the new token; earlier matches were found by earlier calls.
    const from = Math.max(0, before - this.holdback);
    let at = -1;
    for (const stop of this.stops) {
      const i = this.text.indexOf(stop, from);
      if (i !== -1 && (at === -1 || i < at)) {
        at = i;
        this.stopSequence = stop;
      }
    }
    if (at !== -1) {
      this.text = this.text.slice(0, at);
      return '';
    }
    const safe = this.text.length - this.holdback;
    if (safe <= this.emitted) return '';
    const out = this.text.slice(this.emitted, safe);
    this.emitted = safe;
    return out;
  }

  /** Text not sent yet (held back, or before a stop string); call once when generation ends. */
  rest(): string {
    const out = this.text.slice(this.emitted);
    this.emitted = this.text.length;
    return out;
  }
}
