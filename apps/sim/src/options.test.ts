import { DEFAULT_MODEL, EnvError } from '@llmgw/config';
import { describe, expect, it } from 'vitest';
import { FAULT_TYPES, parseOptions, resolveOptions } from './options.ts';

describe('options', () => {
  it('has vLLM-like defaults', () => {
    expect(parseOptions([], {})).toEqual({
      port: 8001,
      host: '127.0.0.1',
      models: [DEFAULT_MODEL],
      ttftMs: 50,
      itlMs: 20,
      ttftJitterMs: 0,
      itlJitterMs: 0,
      maxNumSeqs: 8,
      outputTokens: 0,
      maxModelLen: 8192,
      failureRate: 0,
      failureTypes: [...FAULT_TYPES],
      reasoningTokens: 8,
      reasoningField: 'reasoning_content',
      extraDeltaField: '',
      logLevel: 'info',
    });
  });

  it('reads LOG_LEVEL like the api and the worker', () => {
    expect(parseOptions([], { LOG_LEVEL: 'warn' }).logLevel).toBe('warn');
    expect(parseOptions(['--log-level', 'error'], { LOG_LEVEL: 'warn' }).logLevel).toBe('error');
    expect(() => parseOptions([], { LOG_LEVEL: 'loud' })).toThrow(/environment variable LOG_LEVEL/);
  });

  it('reads env, and flags win over env', () => {
    const o = parseOptions(['--ttft-ms', '20', '--model=a, b', '--', '--failure-types', 'drop'], {
      SIM_TTFT_MS: '99',
      SIM_ITL_MS: '7',
      SIM_PORT: '',
    });
    expect(o).toMatchObject({ ttftMs: 20, itlMs: 7, port: 8001, models: ['a', 'b'], failureTypes: ['drop'] });
  });

  it('reads the reasoning options', () => {
    expect(parseOptions(['--reasoning-tokens', '3'], { SIM_REASONING_FIELD: 'both' })).toMatchObject({
      reasoningTokens: 3,
      reasoningField: 'both',
    });
    expect(() => parseOptions(['--reasoning-field', 'thoughts'], {})).toThrow(/flag --reasoning-field/);
    expect(() => parseOptions([], { SIM_REASONING_TOKENS: '-1' })).toThrow(/SIM_REASONING_TOKENS/);
  });

  it('names the flag or variable at fault', () => {
    expect(() => parseOptions(['--itl-ms', 'fast'], {})).toThrow(/flag --itl-ms/);
    expect(() => parseOptions([], { SIM_FAILURE_RATE: '1.5' })).toThrow(
      /environment variable SIM_FAILURE_RATE/,
    );
    expect(() => parseOptions([], { SIM_FAILURE_TYPES: 'drop,meteor' })).toThrow(/SIM_FAILURE_TYPES/);
    expect(() => parseOptions(['--nope', '1'], {})).toThrow(EnvError);
    expect(() => parseOptions(['--port'], {})).toThrow(/--port needs a value/);
  });

  it('fills defaults for options given in code', () => {
    expect(resolveOptions({ port: 0, models: ['x'] })).toMatchObject({
      port: 0,
      models: ['x'],
      maxNumSeqs: 8,
    });
    expect(() => resolveOptions({ maxNumSeqs: 0 })).toThrow(/maxNumSeqs/);
  });
});
