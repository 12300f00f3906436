import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from '@llmgw/observability';
import { type BackendHealth, backendHealthBody } from '@llmgw/protocol';

export interface WorkerHealth {
  ok: boolean;
  /** The body's fields besides `status`; `backend` is shown snake_case, as the api's /health shows it. */
  detail: { backend?: BackendHealth } & Record<string, unknown>;
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * The worker's own small HTTP server (it has no other): `GET /metrics` for Prometheus and
 * `GET /health` for liveness probes (200 while the worker runs and reaches Redis, else 503).
 */
export async function startMetricsServer(
  port: number,
  host: string,
  registry: Registry,
  health: () => WorkerHealth,
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
      return;
    }
    if (req.method === 'GET' && path === '/health') {
      const { ok, detail } = health();
      const body = {
        status: ok ? 'ok' : 'unavailable',
        ...detail,
        ...(detail.backend && { backend: backendHealthBody(detail.backend) }),
      };
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          err.code === 'EADDRINUSE'
            ? `METRICS_PORT ${port} is in use: set METRICS_PORT to a free port (0: any)`
            : `METRICS_PORT ${port}: ${err.message}`,
        ),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
