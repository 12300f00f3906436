/** Polls `pred` every `everyMs` until it holds or `timeoutMs` passes; returns its last answer. */
export async function until(
  pred: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  everyMs = 25,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await pred()) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return pred();
}
