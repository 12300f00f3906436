import { join } from 'node:path';

/**
 * nginx's command line for a config at `prefix`/nginx.conf: in the foreground, its pid file and
 * temp files under `prefix`, errors on stderr (deploy tests and the bench's nginx peer).
 */
export const nginxArgs = (prefix: string, extra: string[] = []): string[] => [
  '-p',
  prefix,
  '-c',
  join(prefix, 'nginx.conf'),
  '-e',
  'stderr',
  '-g',
  `pid ${join(prefix, 'nginx.pid')}; daemon off;`,
  ...extra,
];
