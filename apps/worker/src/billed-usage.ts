import type { Usage } from '@llmgw/protocol';

/**
 * What a job is charged: the backend's prompt count (else the api's estimate, when the backend
 * said nothing, as an OpenAI-compatible one cut off mid-stream does) plus what was generated;
 * nothing at all when the backend produced nothing. The quota settlement, the usage ledger and
 * the job's end event (which `GET /v1/jobs/{id}` reports) all take these numbers, so the three
 * agree for every job (issue 24 §9).
 */
export function billedUsage(usage: Usage | undefined, promptEstimate = 0): Usage {
  if (!usage || (usage.promptTokens <= 0 && usage.completionTokens <= 0)) {
    return { promptTokens: 0, completionTokens: 0 };
  }
  return {
    promptTokens: usage.promptTokens > 0 ? usage.promptTokens : promptEstimate,
    completionTokens: Math.max(0, usage.completionTokens),
  };
}
