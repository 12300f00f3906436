/**
 * nginx as the floor of any proxy: `proxy_pass` to the simulator with no buffering, over HTTP/1.1
 * keep-alive upstream connections, one worker process (the api is one process too). Whatever a
 * proxy in front of the simulator adds, nginx adds the least of it; the gateway's, Portkey's and
 * LiteLLM's rows are read against this one as much as against the simulator's.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, nginxArgs } from '@llmgw/devkit';
import { childPids, spawnPeer, waitForPeerPort } from './process.ts';

export interface RunningNginx {
  url: string;
  /** The worker process (it serves every request; the master only supervises). */
  pid: number | undefined;
  close(): Promise<void>;
}

export const nginxAvailable = (): boolean => spawnSync('nginx', ['-v'], { stdio: 'ignore' }).status === 0;

/**
 * Temp paths inside `prefix`: Debian's nginx is built with /var/lib/nginx/* ones, which only root
 * can write. No access log: the direct row writes none either.
 */
export function nginxConf(upstreamPort: number, listenPort: number, prefix: string): string {
  return `worker_processes 1;
events {
  worker_connections 8192;
}
http {
  access_log off;
  client_body_temp_path ${join(prefix, 'body')};
  proxy_temp_path ${join(prefix, 'proxy')};
  fastcgi_temp_path ${join(prefix, 'fastcgi')};
  uwsgi_temp_path ${join(prefix, 'uwsgi')};
  scgi_temp_path ${join(prefix, 'scgi')};
  tcp_nodelay on;
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  upstream sim {
    server 127.0.0.1:${upstreamPort};
    keepalive 512;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${listenPort};
    location / {
      proxy_pass http://sim;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 600s;
    }
  }
}
`;
}

/** nginx in front of the simulator at `simUrl` (no `/v1`), on a free port of 127.0.0.1. */
export async function startNginx(simUrl: string): Promise<RunningNginx> {
  const prefix = mkdtempSync(join(tmpdir(), 'llmgw-bench-nginx-'));
  const port = await freePort();
  writeFileSync(join(prefix, 'nginx.conf'), nginxConf(Number(new URL(simUrl).port), port, prefix));
  const peer = spawnPeer('nginx', 'nginx', nginxArgs(prefix));
  const close = async () => {
    // SIGTERM to the master: it stops its worker first (SIGKILL would leave the worker behind).
    await peer.stop('SIGTERM');
    rmSync(prefix, { recursive: true, force: true });
  };
  try {
    await waitForPeerPort(peer, port);
  } catch (err) {
    rmSync(prefix, { recursive: true, force: true });
    throw err;
  }
  const master = peer.child.pid;
  return {
    url: `http://127.0.0.1:${port}`,
    pid: master === undefined ? undefined : childPids(master)[0],
    close,
  };
}
