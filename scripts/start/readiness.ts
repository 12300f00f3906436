import { type SpawnedService, until } from '@llmgw/devkit';

/**
 * Polls `url` until it answers 200; rejects if `svc` exits first or after `timeoutMs`. A health
 * endpoint rather than a log line: the child's LOG_LEVEL may hide every line.
 */
export async function waitHealthy(svc: SpawnedService, url: string, timeoutMs = 60_000): Promise<void> {
  let exited: number | string | undefined;
  void svc.exited.then((code) => {
    exited = code;
  });
  const healthy = await until(
    () => {
      if (exited !== undefined) throw new Error(`${svc.name} exited (${exited}) before it was ready`);
      return answersOk(url);
    },
    timeoutMs,
    100,
  );
  if (!healthy) throw new Error(`${svc.name} did not answer ${url} within ${timeoutMs / 1000} s`);
}

async function answersOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    // Not listening yet.
    return false;
  }
}
