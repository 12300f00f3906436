import { postSSE } from '@llmgw/devkit';

/**
 * The simulator's tokens in a text: every token but the first starts with a space and none
 * contains one, so the text splits back into its tokens however frames were coalesced on the way
 * (the gateway merges neighbouring text under load, so frame boundaries are not token boundaries).
 */
export const simTokens = (text: string): string[] => (text === '' ? [] : text.split(/(?= )/));

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
  let text = '';
  for (const d of res.data) {
    if (d === '[DONE]') break;
    const chunk = JSON.parse(d) as { choices: { delta: { content?: string } }[] };
    text += chunk.choices[0]?.delta.content ?? '';
  }
  return simTokens(text);
}

/**
 * Tokens of a seed-format `/chat` stream (its `token` frames' text, split back into the
 * simulator's tokens); throws unless it ends with `[DONE]` and every frame is a token frame.
 */
export function seedTokens(data: string[]): string[] {
  if (data[data.length - 1] !== '[DONE]')
    throw new Error(`stream did not end with [DONE]: ${data.slice(-2).join(' | ')}`);
  let text = '';
  for (const d of data.slice(0, -1)) {
    const frame = JSON.parse(d) as { token?: unknown };
    if (typeof frame.token !== 'string') throw new Error(`not a token frame: ${d}`);
    text += frame.token;
  }
  return simTokens(text);
}
