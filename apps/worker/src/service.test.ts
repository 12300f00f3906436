import { describe, expect, it } from 'vitest';
import { splitSlots } from './service.ts';

describe('splitSlots (a model’s slots over its BullMQ Workers)', () => {
  it('shares the slots out evenly and keeps their sum', () => {
    expect(splitSlots(8, 4)).toEqual([2, 2, 2, 2]);
    expect(splitSlots(10, 4)).toEqual([3, 3, 2, 2]);
    expect(splitSlots(101, 4).reduce((a, b) => a + b, 0)).toBe(101);
  });

  it('never more Workers than slots, never none', () => {
    expect(splitSlots(2, 4)).toEqual([1, 1]);
    expect(splitSlots(1, 4)).toEqual([1]);
    expect(splitSlots(5, 1)).toEqual([5]);
  });
});
