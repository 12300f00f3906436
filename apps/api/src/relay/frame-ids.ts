/**
 * Numbers a stream's SSE frames (`id: N`, from 0) and drops those up to `after`, for a resume.
 * A job's frames are a pure function of its logged events and its rendition, so frame N is the
 * same frame in every rendering of the job: the original stream, a resume, a replay. Comment
 * lines (`: …`) are not frames and get no number.
 */
export class FrameIds {
  private next = 0;

  constructor(private readonly after: number) {}

  /** SSE text of whole frames (`…\n\n` each) → the same frames with ids, minus skipped ones. */
  number(text: string): string {
    if (text === '') return '';
    let out = '';
    let start = 0;
    while (start < text.length) {
      const end = text.indexOf('\n\n', start);
      const stop = end === -1 ? text.length : end + 2;
      const frame = text.slice(start, stop);
      start = stop;
      if (frame.startsWith(':')) {
        out += frame;
        continue;
      }
      const n = this.next++;
      if (n > this.after) out += `id: ${n}\n${frame}`;
    }
    return out;
  }
}
