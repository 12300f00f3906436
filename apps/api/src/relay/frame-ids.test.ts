import { describe, expect, it } from 'vitest';
import { FrameIds } from './frame-ids.ts';

describe('FrameIds', () => {
  it('numbers every frame from 0 across calls, leaves comment lines alone, and skips up to `after`', () => {
    const all = new FrameIds(-1);
    expect(all.number('data: a\n\nevent: x\ndata: b\n\n')).toBe(
      'id: 0\ndata: a\n\nid: 1\nevent: x\ndata: b\n\n',
    );
    expect(all.number(': queued position=2\n\n')).toBe(': queued position=2\n\n');
    expect(all.number('data: c\n\n')).toBe('id: 2\ndata: c\n\n');
    expect(all.number('')).toBe('');

    const resumed = new FrameIds(1);
    expect(resumed.number('data: a\n\nevent: x\ndata: b\n\n')).toBe('');
    expect(resumed.number('data: c\n\ndata: d\n\n')).toBe('id: 2\ndata: c\n\nid: 3\ndata: d\n\n');
  });
});
