/**
 * Deterministic "model output": the same prompt (and seed) always yields the same tokens and the
 * same natural length, so tests can assert on text and benchmarks are reproducible.
 */

/** The vocabulary of the simulated model: every generated token is one of these words. */
export const WORDS: readonly string[] = [
  'the of and to in is you that it he was for on are as with his they at be this have from or one',
  'had by word but not what all were we when your can said there use an each which she do how their',
  'if will up other about out many then them these so some her would make like him into time has',
  'look two more write go see number no way could people my than first water been call who oil its',
  'now find long down day did get come made may part over new sound take only little work know',
  'place year live me back give most very after thing our just name good sentence man think say',
  'great where help through much before line right too mean old any same tell boy follow came want',
  'show also around form three small set put end does another well large must big even such because',
  'turn here why ask went men read need land different home us move try kind hand picture again',
  'change off play spell air away animal house point page letter mother answer found study still',
  'learn should world high light night',
]
  .join(' ')
  .split(' ');

const SPACED = WORDS.map((w) => ` ${w}`);

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** 32-bit FNV-1a over UTF-16 code units. */
export function fnv1a(text: string, hash = FNV_OFFSET): number {
  let h = hash;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return h >>> 0;
}

export interface PromptPart {
  role: string;
  text: string;
  /** Image URLs and audio data: no text, but a different image must give a different answer. */
  media?: string;
  /** Fixed prompt tokens of the images and audio clips in the message (see {@link IMAGE_TOKENS}). */
  mediaTokens?: number;
}

/** Prompt tokens of one image, whatever its size (a real vision encoder's count depends on the pixels). */
export const IMAGE_TOKENS = 256;
/** Prompt tokens of one audio clip, whatever its length. */
export const AUDIO_TOKENS = 128;

/** Hash of the whole conversation plus the request's seed; the source of every generated token. */
export function promptHash(parts: readonly PromptPart[], seed?: number | null): number {
  let h = FNV_OFFSET;
  for (const p of parts) {
    h = fnv1a(`${p.role}\u0000${p.text}\u0001`, h);
    // Only when present, so a text-only conversation hashes as it always has.
    if (p.media !== undefined && p.media !== '') h = fnv1a(`${p.media}\u0002`, h);
  }
  if (seed !== undefined && seed !== null) h = fnv1a(`seed:${seed}`, h);
  return h;
}

/**
 * A tokenizer-free estimate: a token is ~4 characters, plus 3 tokens of chat template per message,
 * plus the fixed count of each image and audio clip.
 */
export function estimatePromptTokens(parts: readonly PromptPart[]): number {
  let chars = 0;
  let media = 0;
  for (const p of parts) {
    chars += p.text.length;
    media += p.mediaTokens ?? 0;
  }
  return Math.ceil(chars / 4) + 3 * parts.length + media;
}

/** A raw prompt (legacy completions, no chat template): ~4 characters a token, at least the BOS token. */
export function estimateTextTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

const MIN_NATURAL = 16;
const MAX_NATURAL = 256;

/** Where the "model" would emit EOS: `outputTokens` if set, else 16..256 derived from the hash. */
export function naturalLength(hash: number, outputTokens: number): number {
  if (outputTokens > 0) return outputTokens;
  // Murmur3 finalizer, so the length is not correlated with the first token.
  let h = hash ^ 0x9e3779b9;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h = (h ^ (h >>> 16)) >>> 0;
  return MIN_NATURAL + (h % (MAX_NATURAL - MIN_NATURAL + 1));
}

/** Token i is a word; every token but the first carries a leading space, like BPE pieces. */
export class TokenSource {
  private state: number;
  private first = true;

  constructor(hash: number) {
    this.state = hash | 0;
  }

  /** mulberry32: a few integer ops per token. */
  next(): string {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const index = ((t ^ (t >>> 14)) >>> 0) % WORDS.length;
    if (this.first) {
      this.first = false;
      return WORDS[index]!;
    }
    return SPACED[index]!;
  }
}

export type MessageContent =
  | string
  | readonly { type: string; text?: string | undefined }[]
  | null
  | undefined;

/** The text of a message: a string, or the concatenated `text` blocks (other block types carry none). */
export function contentText(content: MessageContent): string {
  if (typeof content === 'string') return content;
  if (!content) return '';
  let text = '';
  for (const block of content) if (block.type === 'text' && block.text !== undefined) text += block.text;
  return text;
}
