import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import { clip } from '../../clip.ts';

/** One bar: its labels and the two parts it stacks. */
export interface Bar {
  /** The whole label, in the bar's hover title. */
  label: string;
  /** Beside the bar: cut to {@link LABEL_CHARS}. */
  short: string;
  prompt: number;
  completion: number;
}

export const MAX_BARS = 25;
const WIDTH = 800;
const LABEL_W = 340;
/** What fits left of the bars at 12 px. */
export const LABEL_CHARS = 44;
const BAR_W = 340;
const ROW_H = 22;
const TOP = 24;

const PROMPT_FILL = '#4c78a8';
const COMPLETION_FILL = '#f58518';

const fmt = (n: number) => n.toLocaleString('en-US');
/** SVG lengths: whole tenths of a pixel are plenty. */
const px = (n: number) => Math.round(n * 10) / 10;

/**
 * Tokens per bar as an inline SVG (no script, no external file): horizontal bars, largest first,
 * prompt and completion tokens stacked, each with its figures as text and as a hover title (with
 * the whole label; the short one beside the bar is cut to what fits).
 * Every label goes through hono/html's escaping like the rest of the page.
 */
export function tokenBars(bars: readonly Bar[]): HtmlEscapedString | Promise<HtmlEscapedString> {
  const shown = [...bars]
    .sort((a, b) => b.prompt + b.completion - (a.prompt + a.completion))
    .slice(0, MAX_BARS);
  const max = Math.max(1, ...shown.map((b) => b.prompt + b.completion));
  const height = TOP + shown.length * ROW_H + 4;
  const rows = shown.map((b, i) => {
    const y = TOP + i * ROW_H;
    const pw = (b.prompt / max) * BAR_W;
    const cw = (b.completion / max) * BAR_W;
    const total = b.prompt + b.completion;
    return html`<g class="bar">
<title>${b.label}: ${fmt(b.prompt)} prompt + ${fmt(b.completion)} completion tokens</title>
<text x="${LABEL_W - 8}" y="${y + 15}" text-anchor="end">${clip(b.short, LABEL_CHARS)}</text>
<rect x="${LABEL_W}" y="${y + 3}" width="${px(pw)}" height="16" fill="${PROMPT_FILL}"></rect>
<rect x="${px(LABEL_W + pw)}" y="${y + 3}" width="${px(cw)}" height="16" fill="${COMPLETION_FILL}"></rect>
<text x="${px(LABEL_W + pw + cw + 6)}" y="${y + 15}">${fmt(total)}</text>
</g>`;
  });
  return html`<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="${WIDTH}" height="${height}"
 viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="Tokens per key and model">
<rect x="${LABEL_W}" y="4" width="12" height="12" fill="${PROMPT_FILL}"></rect>
<text x="${LABEL_W + 16}" y="14">prompt tokens</text>
<rect x="${LABEL_W + 130}" y="4" width="12" height="12" fill="${COMPLETION_FILL}"></rect>
<text x="${LABEL_W + 146}" y="14">completion tokens</text>
${rows}
</svg>`;
}
