import { fnv1a } from './text.ts';

/** A served name containing `reason` (any case, e.g. `sim-reasoning`) is a reasoning model. */
export const isReasoningModel = (model: string): boolean => /reason/i.test(model);

const SIGNATURE_WORDS = 12;

/**
 * The `signature` of an Anthropic thinking block: opaque base64 to a client, here 48 bytes
 * derived from the thinking text so the same thoughts always carry the same signature.
 */
export function thinkingSignature(thinking: string): string {
  const bytes = Buffer.alloc(SIGNATURE_WORDS * 4);
  let h = fnv1a(thinking);
  for (let i = 0; i < SIGNATURE_WORDS; i++) {
    h = fnv1a(`sig${i}`, h);
    bytes.writeUInt32BE(h, i * 4);
  }
  return bytes.toString('base64');
}
