import { describe, expect, it } from 'vitest';
import { SESSION_TTL_S, sessionValid, sessionValue } from './session.ts';

const TOKEN = 'admin-token-0123456789abcdef';

describe('admin session cookie', () => {
  it('holds an expiry and an HMAC, never the token; valid until it expires', () => {
    const now = Date.now();
    const value = sessionValue(TOKEN, now);
    expect(value).toMatch(/^v1\.\d+\.[\w-]{43}$/);
    expect(value).not.toContain(TOKEN);
    expect(sessionValid(value, TOKEN, now)).toBe(true);
    expect(sessionValid(value, TOKEN, now + (SESSION_TTL_S - 5) * 1000)).toBe(true);
    expect(sessionValid(value, TOKEN, now + (SESSION_TTL_S + 1) * 1000)).toBe(false);
  });

  it('is void under another token, with a moved expiry, or malformed', () => {
    const value = sessionValue(TOKEN);
    expect(sessionValid(value, `${TOKEN}-rotated`)).toBe(false);
    const [v, expiry, mac] = value.split('.');
    expect(sessionValid(`${v}.${Number(expiry) + 3600}.${mac}`, TOKEN)).toBe(false);
    const flipped = `${mac!.slice(0, -1)}${mac!.endsWith('A') ? 'B' : 'A'}`;
    expect(sessionValid(`${v}.${expiry}.${flipped}`, TOKEN)).toBe(false);
    for (const bad of [undefined, '', 'v1', TOKEN, `v2.${expiry}.${mac}`])
      expect(sessionValid(bad, TOKEN)).toBe(false);
  });
});
