/**
 * Finish reasons between the two vocabularies. The gateway's events speak OpenAI's
 * (stop | length | tool_calls | content_filter); Anthropic backends and `/v1/messages` clients
 * speak Anthropic's stop reasons.
 */
const FROM_ANTHROPIC: Record<string, string> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  max_tokens: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
  pause_turn: 'stop',
  model_context_window_exceeded: 'length',
};

const TO_ANTHROPIC: Record<string, string> = {
  stop: 'end_turn',
  length: 'max_tokens',
  tool_calls: 'tool_use',
  function_call: 'tool_use',
  content_filter: 'refusal',
};

/** An Anthropic stop reason in OpenAI's vocabulary (unknown ones: `stop`). */
export function finishReasonFromAnthropic(stopReason: string | null | undefined): string {
  return (stopReason && Object.hasOwn(FROM_ANTHROPIC, stopReason) && FROM_ANTHROPIC[stopReason]) || 'stop';
}

/** An OpenAI finish reason as an Anthropic stop reason; a named stop sequence is `stop_sequence`. */
export function stopReasonToAnthropic(finishReason: string, stopSequence?: string): string {
  if (finishReason === 'stop' && stopSequence) return 'stop_sequence';
  return (Object.hasOwn(TO_ANTHROPIC, finishReason) && TO_ANTHROPIC[finishReason]) || 'end_turn';
}
