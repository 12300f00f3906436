import type { Addresses } from './addresses.ts';
import type { StartEnv } from './env.ts';
import { say } from './log.ts';

/**
 * The ready line (where everything listens) and a curl to try. `key`: the development key and the
 * file it is in, or undefined with AUTH_MODE=trusted_headers.
 */
export function printReady(opts: {
  env: StartEnv;
  at: Addresses;
  useSim: boolean;
  defaultModel: string;
  key: { key: string; file: string } | undefined;
}): void {
  const { env, at, key } = opts;
  const auth = key === undefined ? `-H 'X-User-ID: demo'` : `-H 'Authorization: Bearer ${key.key}'`;
  say(
    `ready: api ${at.api.url}${opts.useSim ? `, simulator ${at.sim.url}` : `, backend ${env.LLM_BASE_URL}`}` +
      `, worker metrics ${at.metrics.url}/metrics, default model ${opts.defaultModel}` +
      (key === undefined ? '' : `, development key in ${key.file}`),
  );
  process.stdout.write(
    `\nTry it:\n  curl -N ${at.api.url}/chat ${auth} \\\n` +
      `    -d '{"messages":[{"role":"user","content":"Hello!"}],"max_tokens":32}'\n\n`,
  );
}
