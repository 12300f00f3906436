import type { z } from 'zod';
import { ApiError } from '../../errors/index.ts';
import { CreateKeyRequest, RotateKeyRequest } from '../key-actions.ts';

/**
 * The admin page's forms as the JSON API's requests (key-actions.ts), validated by the same
 * schemas: a form sends strings, the API takes numbers, arrays and records, so each field is
 * turned into its JSON shape first and the schema then decides. An empty field is an absent one.
 */

/** The create form's fields, as typed (what the page shows again next to an error). */
export const CREATE_FIELDS = [
  'user',
  'tier',
  'name',
  'expires_at',
  'models',
  'requests_per_min',
  'tokens_per_min',
  'tokens_per_day',
  'monthly_budget',
  'metadata',
] as const;
export type CreateForm = Partial<Record<(typeof CREATE_FIELDS)[number], string>>;

const LIMITS = ['requests_per_min', 'tokens_per_min', 'tokens_per_day'] as const;

export function createFormOf(form: URLSearchParams): CreateForm {
  const out: CreateForm = {};
  for (const f of CREATE_FIELDS) {
    const v = form.get(f)?.trim();
    if (v) out[f] = v;
  }
  return out;
}

/** `<input type="datetime-local">` sends `YYYY-MM-DDTHH:MM[:SS]` without a zone: the page says UTC. */
function expiresAt(v: string): string | number {
  if (/^\d+$/.test(v)) return Number(v);
  const local = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.exec(v);
  if (local) return local[1] ? `${v}Z` : `${v}:00Z`;
  return v;
}

/** `key=value` per line. */
function metadataOf(v: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of v.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const at = line.indexOf('=');
    if (at <= 0) throw invalid('metadata', 'metadata: one key=value per line');
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

const invalid = (param: string, message: string) => new ApiError('invalid_request', message, { param });

/** The schema's first issue, named by its field as the form calls it (`tokens_per_min`, not `limits.tokens_per_min`). */
function parsed<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = String(issue.path.at(-1) ?? 'form');
  throw invalid(field, `${field}: ${issue.message}`);
}

/** The create form as a {@link CreateKeyRequest}; 400 `invalid_request` naming the field. */
export function createRequestOf(f: CreateForm): CreateKeyRequest {
  const limits = Object.fromEntries(LIMITS.filter((l) => f[l] !== undefined).map((l) => [l, Number(f[l])]));
  return parsed(CreateKeyRequest, {
    user: f.user ?? '',
    ...(f.tier !== undefined && { tier: f.tier }),
    ...(f.name !== undefined && { name: f.name }),
    ...(f.expires_at !== undefined && { expires_at: expiresAt(f.expires_at) }),
    ...(f.models !== undefined && { models: f.models.split(/[\s,]+/).filter(Boolean) }),
    ...(Object.keys(limits).length > 0 && { limits }),
    ...(f.monthly_budget !== undefined && { monthly_budget: Number(f.monthly_budget) }),
    ...(f.metadata !== undefined && { metadata: metadataOf(f.metadata) }),
  });
}

/** The rotate form (`grace_seconds`, default the API's) as a {@link RotateKeyRequest}. */
export function rotateRequestOf(form: URLSearchParams): RotateKeyRequest {
  const grace = form.get('grace_seconds')?.trim();
  return parsed(RotateKeyRequest, grace ? { grace_seconds: Number(grace) } : {});
}
