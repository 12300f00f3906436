import { postSSE } from '@llmgw/devkit';

/**
 * What the backend itself streams for a request, token by token: the reference a gateway
 * response must reproduce exactly (the simulator is deterministic in prompt and seed).
 */
export async function directTokens(
  simUrl: string,
  model: string,
  body: Record<string, unknown>,
): Promise<string[]> {
  const res = await postSSE(`${simUrl}/v1/chat/completions`, { model, ...body, stream: true });
  if (res.status !== 200) throw new Error(`simulator answered ${res.status}: ${res.body}`);
  const tokens: string[] = [];
  for (const d of res.data) {
    if (d === '[DONE]') break;
    const chunk = JSON.parse(d) as { choices: { delta: { content?: string } }[] };
    const text = chunk.choices[0]?.delta.content;
    if (text) tokens.push(text);
  }
  return tokens;
}

/** Tokens of a seed-format `/chat` stream; throws unless it ends with `[DONE]`. */
export function seedTokens(data: string[]): string[] {
  if (data[data.length - 1] !== '[DONE]')
    throw new Error(`stream did not end with [DONE]: ${data.slice(-2).join(' | ')}`);
  return data.slice(0, -1).map((d) => (JSON.parse(d) as { token: string }).token);
}
