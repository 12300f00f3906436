import { createServer } from 'node:net';
import { freePort } from '@llmgw/devkit';
import type { StartEnv } from './env.ts';

export interface Endpoint {
  /** Bind address. */
  host: string;
  port: number;
  /** `http://` and the address to dial (a wildcard bind answers on loopback). */
  url: string;
}

export interface Addresses {
  api: Endpoint;
  sim: Endpoint;
  metrics: Endpoint;
}

/**
 * Where the api, the simulator and the worker's metrics listen: a port of 0 is picked free, a
 * port set must be free. Checked first, and not only for a clear message: the health checks would
 * otherwise ask whichever process holds the port (another stack's api) and call this stack ready.
 */
export async function chooseAddresses(env: StartEnv, useSim: boolean): Promise<Addresses> {
  const [port, simPort, metricsPort] = await Promise.all([
    env.PORT || freePort(),
    env.SIM_PORT || freePort(),
    env.METRICS_PORT || freePort(),
  ]);
  const at = (host: string, port: number): Endpoint => ({ host, port, url: `http://${dial(host)}:${port}` });
  const addresses = {
    api: at(env.HOST, port),
    sim: at(env.SIM_HOST ?? env.HOST, simPort),
    metrics: at(env.METRICS_HOST ?? env.HOST, metricsPort),
  };
  const taken: [string, Endpoint][] = [
    ['PORT', addresses.api],
    ...(useSim ? [['SIM_PORT', addresses.sim] as [string, Endpoint]] : []),
    ['METRICS_PORT', addresses.metrics],
  ];
  for (const [name, { host, port: p }] of taken) {
    if (!(await portFree(host, p)))
      throw new Error(
        `${name === 'PORT' ? 'port' : name} ${p} is in use: set ${name} to a free port (0: any)`,
      );
  }
  return addresses;
}

const dial = (host: string) =>
  host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;

/** Whether this process could listen on `host:port` right now. */
function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, host, () => probe.close(() => resolve(true)));
  });
}
