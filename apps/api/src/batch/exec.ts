/** EXEC's replies, throwing the first command's error (ioredis returns them in the reply). */
export function throwFirst(replies: [Error | null, unknown][] | null): void {
  if (replies === null) throw new Error('MULTI aborted');
  for (const [err] of replies) if (err) throw err;
}
