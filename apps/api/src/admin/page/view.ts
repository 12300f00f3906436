import { createHash } from 'node:crypto';
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import { type ApiKeyRecord, type CreatedKey, isExpired } from '../../auth/api-keys.ts';
import { clip } from '../../clip.ts';
import type { UsageReport, UsageRow } from '../../usage/bodies.ts';
import { BOARD_PATH } from '../bull-board.ts';
import { batchesSection, type OpenBatch } from './batches.ts';
import { type Bar, LABEL_CHARS, MAX_BARS, tokenBars } from './chart.ts';
import { CSRF_FIELD } from './csrf.ts';
import type { CreateForm } from './form.ts';

/**
 * The admin page's HTML, server-rendered with hono/html: every `${value}` that is a string is
 * escaped (`& < > " '`), so user ids, key names and metadata are text, never markup; only
 * {@link CSS} goes in raw. No script at all and no external file: the page works offline and its
 * Content-Security-Policy (routes.ts) allows nothing but this style sheet, by its hash.
 */
type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

export const PAGE_PATH = '/admin';
export const FORM_PATHS = {
  create: '/admin/page/keys',
  rotate: (id: string) => `/admin/page/keys/${encodeURIComponent(id)}/rotate`,
  revoke: (id: string) => `/admin/page/keys/${encodeURIComponent(id)}/revoke`,
};

const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}
header{display:flex;gap:1.5rem;align-items:baseline;padding:.75rem 1.5rem;background:#22313f;color:#fff}
header h1{font-size:1.1rem;margin:0;flex:1}header a{color:#fff}
main{padding:0 1.5rem 3rem}section{margin-top:1.5rem}
h2{font-size:1.1rem;border-bottom:1px solid #ccc;padding-bottom:.25rem}
.scroll{overflow-x:auto}table{border-collapse:collapse;background:#fff}
th,td{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#eef1f4;white-space:nowrap}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:600;background:#f3f3f3}time span{white-space:nowrap}code{font-size:.95em}.muted{color:#666}
.notice{background:#e6f4ea;border:1px solid #8bc59b;padding:.5rem .75rem}
.error{background:#fdecea;border:1px solid #e0a39c;padding:.5rem .75rem;color:#8a1c12}
.badge{display:inline-block;padding:0 .4rem;border-radius:.6rem;font-size:.85em;background:#ddd}
.badge.active{background:#cdebd6}.badge.revoked{background:#f3c6c1}.badge.expired{background:#f6e0b5}
form.inline{display:inline-flex;gap:.3rem;align-items:center;margin:0 .3rem .2rem 0}
form.inline input{width:4.5rem}fieldset{border:1px solid #ccc;background:#fff;max-width:52rem}
.grid{display:grid;grid-template-columns:12rem 1fr;gap:.4rem .75rem;align-items:center}
.grid input,.grid select,.grid textarea{font:inherit;padding:.25rem}button{font:inherit;cursor:pointer}
input.secret{font:1rem monospace;width:100%;max-width:40rem;padding:.4rem}
svg.chart{display:block;margin:.75rem 0}svg.chart text{font:12px system-ui,sans-serif;fill:#1b1b1b}
form.range{margin:.25rem 0 .5rem}form.range input{width:auto}td.actions{white-space:nowrap}
td.actions form{display:flex;margin:0 0 .3rem}.grid button{justify-self:start;padding:.3rem 1.2rem}`;

/** `style-src 'sha256-…'`: the one style sheet the page's CSP allows. */
export const STYLE_HASH = `sha256-${createHash('sha256').update(CSS).digest('base64')}`;

/** A time in UTC to the minute; date and time each kept on one line when the column wraps. */
function when(ms: number | undefined, none = '—'): Html {
  if (ms === undefined) return html`<span class="muted">${none}</span>`;
  const iso = new Date(ms).toISOString();
  return html`<time datetime="${iso}"><span>${iso.slice(0, 10)}</span> <span>${iso.slice(11, 16)} UTC</span></time>`;
}

const fmt = (n: number) => n.toLocaleString('en-US');

function layout(title: string, readOnly: boolean, body: Html): Html {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${title}</title><style>${raw(CSS)}</style></head>
<body><header><h1>llm-gateway admin${readOnly ? ' (read-only)' : ''}</h1>
<a href="${PAGE_PATH}">Keys and usage</a><a href="${BOARD_PATH}">Bull Board (queues)</a><a href="/admin/logout">Log out</a></header>
<main>${body}</main></body></html>`;
}

const csrfInput = (csrf: string | undefined) =>
  html`<input type="hidden" name="${CSRF_FIELD}" value="${csrf ?? ''}">`;

type Status = 'active' | 'expired' | 'revoked';
const statusOf = (k: ApiKeyRecord): Status => (k.revoked ? 'revoked' : isExpired(k) ? 'expired' : 'active');

function limitsCell(k: ApiKeyRecord): Html {
  const set = Object.entries(k.limits ?? {}).filter(([, v]) => v !== undefined);
  if (set.length === 0) return html`<span class="muted">the tier's</span>`;
  return html`${set.map(([name, v], i) => html`${i > 0 ? html`<br>` : ''}${name} ${fmt(v)}`)}`;
}

function metadataCell(k: ApiKeyRecord): Html {
  const entries = Object.entries(k.metadata ?? {});
  if (entries.length === 0) return html``;
  return html`${entries.map(([name, v], i) => html`${i > 0 ? html`<br>` : ''}<code>${name}</code>=${v}`)}`;
}

function actionsCell(k: ApiKeyRecord, csrf: string | undefined): Html {
  const status = statusOf(k);
  if (status === 'revoked') return html``;
  const rotate =
    status === 'active'
      ? html`<form class="inline" method="post" action="${FORM_PATHS.rotate(k.id)}">${csrfInput(csrf)}
<label>grace (s) <input type="number" name="grace_seconds" min="0" max="2592000" step="1" value="3600" aria-label="grace seconds for ${k.id}"></label>
<button type="submit">Rotate</button></form>`
      : '';
  return html`${rotate}<form class="inline" method="post" action="${FORM_PATHS.revoke(k.id)}">${csrfInput(csrf)}
<button type="submit">Revoke</button></form>`;
}

function keysTable(keys: readonly ApiKeyRecord[], readOnly: boolean, csrf: string | undefined): Html {
  if (keys.length === 0) return html`<p class="muted">No API keys yet.</p>`;
  const rows = [...keys].reverse().map((k) => {
    const status = statusOf(k);
    return html`<tr data-key-id="${k.id}">
<td><code>${k.id}</code>${k.name !== undefined ? html`<br><span class="key-name">${k.name}</span>` : ''}</td>
<td>${k.userId}</td><td>${k.tier}</td><td>${when(k.createdAt)}</td>
<td>${when(k.expiresAt, 'never')}</td>
<td>${k.models ? k.models.join(', ') : html`<span class="muted">all</span>`}</td>
<td>${limitsCell(k)}</td>
<td class="n">${k.monthlyBudget !== undefined ? fmt(k.monthlyBudget) : html`<span class="muted">none</span>`}</td>
<td>${metadataCell(k)}</td>
<td>${when(k.lastUsedAt, 'never')}</td>
<td><span class="badge ${status}">${status}</span></td>
${readOnly ? '' : html`<td class="actions">${actionsCell(k, csrf)}</td>`}</tr>`;
  });
  return html`<div class="scroll"><table id="keys-table"><thead><tr><th>Key</th><th>User</th><th>Tier</th>
<th>Created</th><th>Expires</th><th>Models</th><th>Own limits</th><th>Monthly budget<br>(tokens)</th>
<th>Metadata</th><th>Last used</th><th>Status</th>${readOnly ? '' : html`<th>Actions</th>`}</tr></thead>
<tbody>${rows}</tbody></table></div>`;
}

export interface UsageView {
  start: string;
  end: string;
  report?: UsageReport;
  /** Why there is no report (a bad range, the ledger unreachable). */
  error?: string;
  /** PRICES_JSON is set: cost columns. */
  priced: boolean;
}

/** The key of a usage row as the chart names it: in full (`id (name)`), and short (the name, else the id). */
function keyLabels(row: UsageRow, byId: Map<string, ApiKeyRecord>): { full: string; short: string } {
  if (row.key === null || row.key === undefined) return { full: '(no key)', short: '(no key)' };
  const name = byId.get(row.key)?.name;
  return name === undefined
    ? { full: row.key, short: row.key }
    : { full: `${row.key} (${name})`, short: name };
}

/** USD to the hundredth of a cent; a row that cost less than that but something says so. */
function cost(v: number | null | undefined): Html | string {
  if (v === null || v === undefined) return html`<span class="muted">—</span>`;
  return v > 0 && v < 0.0001 ? '< $0.0001' : `$${v.toFixed(4)}`;
}

function usageSection(u: UsageView, keys: readonly ApiKeyRecord[]): Html {
  const range = html`<form method="get" action="${PAGE_PATH}" class="inline range">
<label>from <input type="date" name="start" value="${u.start}"></label>
<label>to <input type="date" name="end" value="${u.end}"></label> <button type="submit">Show</button></form>`;
  const head = html`<h2>Usage per key and model, ${u.start} to ${u.end} (UTC days)</h2>${range}${
    u.error ? html`<p class="error" role="alert">${u.error}</p>` : ''
  }`;
  if (!u.report) return head;
  const rows = u.report.data;
  if (rows.length === 0) return html`${head}<p class="muted" id="usage-empty">No usage in this range.</p>`;
  const byId = new Map(keys.map((k) => [k.id, k]));
  const bars: Bar[] = rows.map((r) => {
    const key = keyLabels(r, byId);
    const model = r.model ?? '';
    // The model stays readable: the key's part is cut first.
    const m = clip(model, 20);
    // clip() adds a `…`: one more character than it keeps.
    const short = `${clip(key.short, LABEL_CHARS - 4 - m.length)} · ${m}`;
    return {
      label: `${key.full} · ${model}`,
      short,
      prompt: r.prompt_tokens,
      completion: r.completion_tokens,
    };
  });
  const more =
    rows.length > MAX_BARS
      ? html`<p class="muted">The chart shows the ${MAX_BARS} largest; the table has all.</p>`
      : '';
  const costHead = u.priced ? html`<th>Cost (USD)</th>` : '';
  const line = (r: UsageRow, key: Html | string, user: string, model: string, cls = '') =>
    html`<tr class="${cls}"${r.key ? html` data-key-id="${r.key}"` : ''}${r.model ? html` data-model="${r.model}"` : ''}>
<td>${key}</td><td>${user}</td><td>${model}</td><td class="n">${fmt(r.requests)}</td>
<td class="n">${fmt(r.prompt_tokens)}</td><td class="n">${fmt(r.completion_tokens)}</td><td class="n">${fmt(r.total_tokens)}</td>
${u.priced ? html`<td class="n">${cost(r.cost_usd)}</td>` : ''}</tr>`;
  const body = rows.map((r) => {
    const k = r.key ? byId.get(r.key) : undefined;
    const key = r.key
      ? html`<code>${r.key}</code>${k?.name !== undefined ? html` ${k.name}` : ''}`
      : html`<span class="muted">(no key)</span>`;
    return line(r, key, k?.userId ?? '', r.model ?? '');
  });
  return html`${head}${tokenBars(bars)}${more}
<div class="scroll"><table id="usage-table"><thead><tr><th>Key</th><th>User</th><th>Model</th><th>Requests</th>
<th>Prompt tokens</th><th>Completion tokens</th><th>Total tokens</th>${costHead}</tr></thead>
<tbody>${body}${line(u.report.total, 'Total', '', '', 'total')}</tbody></table></div>`;
}

function createSection(tiers: readonly string[], csrf: string | undefined, f: CreateForm): Html {
  const tier = f.tier ?? (tiers.includes('free') ? 'free' : tiers[0]);
  const num = (name: keyof CreateForm, label: string) =>
    html`<label for="${name}">${label}</label><input id="${name}" name="${name}" type="number" min="1" step="1" value="${f[name] ?? ''}">`;
  return html`<h2>Create a key</h2>
<form method="post" action="${FORM_PATHS.create}" id="create-key">${csrfInput(csrf)}<fieldset><div class="grid">
<label for="user">User (required)</label><input id="user" name="user" required maxlength="256" value="${f.user ?? ''}">
<label for="tier">Tier</label><select id="tier" name="tier">${tiers.map(
    (t) => html`<option value="${t}"${t === tier ? ' selected' : ''}>${t}</option>`,
  )}</select>
<label for="name">Name</label><input id="name" name="name" maxlength="128" value="${f.name ?? ''}">
<label for="expires_at">Expires at (UTC)</label><input id="expires_at" name="expires_at" type="datetime-local" value="${f.expires_at ?? ''}">
<label for="models">Models (comma separated; empty: all)</label><input id="models" name="models" value="${f.models ?? ''}">
${num('requests_per_min', 'Requests per minute')}${num('tokens_per_min', 'Tokens per minute')}${num('tokens_per_day', 'Tokens per day')}
${num('monthly_budget', 'Monthly budget (tokens)')}
<label for="metadata">Metadata (key=value per line)</label><textarea id="metadata" name="metadata" rows="2">${f.metadata ?? ''}</textarea>
<span></span><span class="muted">Empty limits: the tier's.</span>
<span></span><button type="submit">Create key</button></div></fieldset></form>`;
}

export interface PageModel {
  keys: readonly ApiKeyRecord[];
  tiers: readonly string[];
  readOnly: boolean;
  /** This session's CSRF token (undefined: no browser session, the forms will be refused). */
  csrf: string | undefined;
  usage: UsageView;
  /** The batches not final yet (batches.ts). */
  batches?: readonly OpenBatch[];
  notice?: string;
  error?: string;
  /** The create form's values, shown again with an error. */
  form?: CreateForm;
}

export function adminPage(m: PageModel): Html {
  const flash = html`${m.notice ? html`<p class="notice" role="status">${m.notice}</p>` : ''}${
    m.error ? html`<p class="error" role="alert">${m.error}</p>` : ''
  }`;
  const readOnlyNote = m.readOnly
    ? html`<p class="notice">Read-only (ADMIN_READONLY=1): keys can be looked at here, not created, rotated or revoked.</p>`
    : '';
  return layout(
    'llm-gateway admin',
    m.readOnly,
    html`${flash}${readOnlyNote}
<section id="usage">${usageSection(m.usage, m.keys)}</section>
<section id="keys"><h2>API keys (${m.keys.length})</h2>${keysTable(m.keys, m.readOnly, m.csrf)}</section>
${m.readOnly ? '' : html`<section id="create">${createSection(m.tiers, m.csrf, m.form ?? {})}</section>`}
<section id="batches">${batchesSection(m.batches ?? [])}</section>`,
  );
}

/** The answer to a creation or a rotation: the secret, this once (the store keeps only its hash). */
export function secretPage(created: CreatedKey, previousValidUntil?: number): Html {
  const rotated = previousValidUntil !== undefined;
  return layout(
    rotated ? 'llm-gateway admin: key rotated' : 'llm-gateway admin: key created',
    false,
    html`<section><h2>${rotated ? 'Key rotated' : 'Key created'}: <code>${created.id}</code></h2>
<p class="notice" role="status">Copy the key now: it is shown this once and cannot be shown again.</p>
<p><label for="secret">API key for user <strong>${created.userId}</strong>${
      created.name !== undefined ? html` (${created.name})` : ''
    }, tier ${created.tier}</label><br>
<input id="secret" class="secret" readonly value="${created.key}" autocomplete="off" spellcheck="false"></p>
${
  rotated
    ? html`<p>The former secret keeps working until ${when(previousValidUntil)}, then gets 401 <code>key_expired</code>.</p>`
    : ''
}
<p><a href="${PAGE_PATH}">Back to keys and usage</a></p></section>`,
  );
}
