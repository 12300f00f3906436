/**
 * Portkey's open-source gateway (`@portkey-ai/gateway`, a devDependency of this package, patched:
 * patches/@portkey-ai__gateway@1.15.2.patch) as a real node process, in front of the simulator as
 * an OpenAI-compatible provider. It keeps no state of its own here (no Redis, no cache, no
 * retries): a request is passed on as it arrives and the stream comes back through it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { freePort } from '@llmgw/devkit';
import { spawnPeer, waitForPeerPort } from './process.ts';

export interface RunningPortkey {
  url: string;
  pid: number | undefined;
  close(): Promise<void>;
}

const manifestPath = () => createRequire(import.meta.url).resolve('@portkey-ai/gateway/package.json');
const manifest = () => JSON.parse(readFileSync(manifestPath(), 'utf8')) as { bin: string; version: string };

/** The installed version (bench/package.json pins it), for the tables. */
export const portkeyVersion = (): string => manifest().version;

/** Its entry as the package declares it (`bin`): the patch makes that a wrapper fixing its streams. */
const portkeyEntry = (): string => join(dirname(manifestPath()), manifest().bin);

/**
 * Where Portkey sends a request: the `openai` provider at a custom host, which must be on its
 * list of trusted hosts (127.0.0.1 is by default). The simulator ignores the API key; Portkey
 * wants one.
 */
export const portkeyHeaders = (simUrl: string): Record<string, string> => ({
  'x-portkey-provider': 'openai',
  'x-portkey-custom-host': `${simUrl}/v1`,
  authorization: 'Bearer bench',
});

/** Portkey on a free port (it listens on every interface: it has no host flag). */
export async function startPortkey(): Promise<RunningPortkey> {
  const port = await freePort();
  // --headless: no web UI, no log-streaming routes. NODE_ENV is left alone: it only hides the UI.
  const peer = spawnPeer('portkey', process.execPath, [portkeyEntry(), `--port=${port}`, '--headless']);
  await waitForPeerPort(peer, port);
  return { url: `http://127.0.0.1:${port}`, pid: peer.child.pid, close: () => peer.stop('SIGTERM') };
}
