import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './free-port.ts';
import {
  askNode,
  type NodeAccess,
  type RedisServerHandle,
  scratchDir as scratch,
  spawnRedisServer,
} from './redis-server.ts';
import { until } from './until.ts';

// Real Redis deployments for tests, from Debian's redis-server on loopback: a TLS primary with
// a certificate made here, and a Sentinel group (a primary, one replica, three sentinels). Tests
// that need them start their own; the shared test Redis is never touched.

export interface TestCertificates {
  ca: string;
  cert: string;
  key: string;
}

/** A CA and a server certificate for 127.0.0.1 and localhost (openssl), as files. */
export function makeTestCertificates(): TestCertificates {
  const dir = scratch('tls');
  const at = (f: string) => join(dir, f);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=llmgw test CA',
    '-keyout',
    at('ca.key'),
    '-out',
    at('ca.pem'),
  );
  ssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    at('server.key'),
    '-out',
    at('server.csr'),
  );
  writeFileSync(at('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  ssl(
    'x509',
    '-req',
    '-in',
    at('server.csr'),
    '-CA',
    at('ca.pem'),
    '-CAkey',
    at('ca.key'),
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    at('san.ext'),
    '-out',
    at('server.pem'),
  );
  return { ca: at('ca.pem'), cert: at('server.pem'), key: at('server.key') };
}

/** A deployment of the test's own over TLS (its certificates), every node with a password. */
export interface Secured {
  certs: TestCertificates;
  password: string;
}

/** The server side of TLS: its certificate, no client certificates asked, replication over TLS. */
const tlsArgs = (certs: TestCertificates): string[] => [
  '--tls-cert-file',
  certs.cert,
  '--tls-key-file',
  certs.key,
  '--tls-ca-cert-file',
  certs.ca,
  '--tls-auth-clients',
  'no',
  '--tls-replication',
  'yes',
];

/** How the test's probes reach a deployment's nodes. */
const accessOf = (secured: Secured | undefined): NodeAccess =>
  secured ? { ca: secured.certs.ca, password: secured.password } : {};

/** The variables every service needs besides the addresses: TLS with the test CA, the password. */
const securedEnv = (secured: Secured | undefined): Record<string, string> =>
  secured ? { REDIS_TLS: 'true', REDIS_TLS_CA_FILE: secured.certs.ca, REDIS_PASSWORD: secured.password } : {};

/** One data node: plain, or (secured) TLS only with a password. */
async function spawnNode(
  secured: Secured | undefined,
  args: string[],
  port?: number,
): Promise<RedisServerHandle> {
  if (!secured) return spawnRedisServer({ port, args });
  return spawnRedisServer({
    tls: { port: port ?? (await freePort()), ca: secured.certs.ca },
    password: secured.password,
    args: [...tlsArgs(secured.certs), ...args],
  });
}

/** A redis-server that speaks TLS only; clients are not asked for certificates. */
export async function spawnTlsRedis(certs: TestCertificates): Promise<RedisServerHandle> {
  return spawnRedisServer({ tls: { port: await freePort(), ca: certs.ca }, args: tlsArgs(certs) });
}

export interface SentinelGroup {
  /** The variables that point every service at it (with TLS and the password when secured). */
  env: { REDIS_SENTINELS: string; REDIS_SENTINEL_NAME: string } & Record<string, string>;
  name: string;
  /** The servers as started: [primary, replica]; after a failover the replica is the primary. */
  servers: RedisServerHandle[];
  /** The data node the sentinels name as primary now. */
  primaryPort(): Promise<number>;
  /** Waits until the sentinels name a primary other than `port` (a failover), up to `ms`. */
  failedOverFrom(port: number, ms?: number): Promise<boolean>;
  stop(): Promise<void>;
}

const MASTER = 'llmgw';

/**
 * A primary, one replica and three sentinels (quorum 2) that declare a primary down after 1 s of
 * silence. Resolves once the replica is in sync and every sentinel knows the other two, so a
 * failover can start at once. `secured`: every node and sentinel speaks TLS only and wants the
 * password (the sentinels' own `requirepass` too: the gateway gives them the same one).
 */
export async function spawnSentinelGroup(secured?: Secured): Promise<SentinelGroup> {
  const ask = <T>(port: number, ...args: [string, ...string[]]) =>
    askNode<T>(accessOf(secured), port, ...args);
  const primary = await spawnNode(secured, []);
  const replica = await spawnNode(secured, [
    '--replicaof',
    '127.0.0.1',
    String(primary.port),
    '--replica-announce-ip',
    '127.0.0.1',
  ]);
  const dir = scratch('sentinel');
  const sentinels: { port: number; child: ChildProcess }[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const conf = join(dir, `sentinel-${i}.conf`);
    writeFileSync(
      conf,
      [
        ...(secured
          ? [
              'port 0',
              `tls-port ${port}`,
              `tls-cert-file ${secured.certs.cert}`,
              `tls-key-file ${secured.certs.key}`,
              `tls-ca-cert-file ${secured.certs.ca}`,
              'tls-auth-clients no',
              'tls-replication yes',
              `requirepass ${secured.password}`,
            ]
          : [`port ${port}`]),
        'bind 127.0.0.1',
        `dir ${dir}`,
        'sentinel announce-ip 127.0.0.1',
        `sentinel monitor ${MASTER} 127.0.0.1 ${primary.port} 2`,
        ...(secured
          ? [`sentinel auth-pass ${MASTER} ${secured.password}`, `sentinel sentinel-pass ${secured.password}`]
          : []),
        `sentinel down-after-milliseconds ${MASTER} 1000`,
        `sentinel failover-timeout ${MASTER} 5000`,
        `sentinel parallel-syncs ${MASTER} 1`,
        '',
      ].join('\n'),
    );
    const child = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    child.unref();
    sentinels.push({ port, child });
  }
  const primaryPort = async () => {
    for (const s of sentinels) {
      const addr = await ask<[string, string]>(s.port, 'SENTINEL', 'get-master-addr-by-name', MASTER);
      if (addr) return Number(addr[1]);
    }
    throw new Error('no sentinel answers');
  };
  const ready = await until(async () => {
    const info = await ask<string>(primary.port, 'INFO', 'replication');
    if (!info?.includes('connected_slaves:1') || !/slave0:.*state=online/.test(info)) return false;
    for (const s of sentinels) {
      const peers = await ask<unknown[]>(s.port, 'SENTINEL', 'sentinels', MASTER);
      const replicas = await ask<unknown[]>(s.port, 'SENTINEL', 'replicas', MASTER);
      if (peers?.length !== 2 || replicas?.length !== 1) return false;
    }
    return true;
  }, 20_000);
  const stop = async () => {
    for (const s of sentinels) if (s.child.exitCode === null) s.child.kill('SIGKILL');
    await Promise.all([primary.kill(), replica.kill()]);
  };
  if (!ready) {
    await stop();
    throw new Error('the sentinel group did not come up within 20 s');
  }
  return {
    env: {
      REDIS_SENTINELS: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
      REDIS_SENTINEL_NAME: MASTER,
      ...securedEnv(secured),
    },
    name: MASTER,
    servers: [primary, replica],
    primaryPort,
    failedOverFrom: (port, ms = 30_000) =>
      until(async () => (await primaryPort().catch(() => port)) !== port, ms),
    stop,
  };
}

export interface RedisClusterHandle {
  /**
   * The variable that points every service at it (the three masters; the rest are found), with
   * TLS and the password when secured.
   */
  env: { REDIS_CLUSTER_NODES: string } & Record<string, string>;
  /** The six servers as started: masters first, then their replicas. */
  servers: RedisServerHandle[];
  /** Ports of the nodes that are masters now. */
  masterPorts(): Promise<number[]>;
  /** Port of the master whose slots hold `key` now (CLUSTER KEYSLOT, then CLUSTER SLOTS). */
  masterOf(key: string): Promise<number>;
  /** Waits until every slot is served again (cluster_state:ok on every live node), up to `ms`. */
  healthy(ms?: number): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * A Redis Cluster of three masters and three replicas (`redis-cli --cluster create
 * --cluster-replicas 1`), a node declared failed after 1 s. Resolves once every node reports
 * cluster_state:ok and every replica is in sync. `secured`: TLS only (clients, replication and the
 * cluster bus) and a password on every node.
 */
export async function spawnRedisCluster(secured?: Secured): Promise<RedisClusterHandle> {
  const ask = <T>(port: number, ...args: [string, ...string[]]) =>
    askNode<T>(accessOf(secured), port, ...args);
  const dir = scratch('cluster');
  const servers: RedisServerHandle[] = [];
  for (let i = 0; i < 6; i++) {
    const port = await freePort();
    servers.push(
      await spawnNode(
        secured,
        [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '1000',
          '--cluster-announce-ip',
          '127.0.0.1',
          // A replica syncs at once rather than after the default 5 s: one not in sync yet would
          // not take over from its master.
          '--repl-diskless-sync-delay',
          '0',
          ...(secured ? ['--tls-cluster', 'yes'] : []),
        ],
        port,
      ),
    );
  }
  execFileSync(
    'redis-cli',
    [
      '--cluster',
      'create',
      ...servers.map((s) => `127.0.0.1:${s.port}`),
      '--cluster-replicas',
      '1',
      '--cluster-yes',
      ...(secured ? ['--tls', '--cacert', secured.certs.ca] : []),
    ],
    {
      stdio: 'ignore',
      timeout: 30_000,
      env: { ...process.env, ...(secured && { REDISCLI_AUTH: secured.password }) },
    },
  );
  const live = () => servers.filter((s) => s.pid !== undefined);
  const healthy = (ms = 30_000) =>
    until(
      async () => {
        for (const s of live()) {
          const info = await ask<string>(s.port, 'CLUSTER', 'INFO');
          if (!info?.includes('cluster_state:ok')) return false;
        }
        return true;
      },
      ms,
      100,
    );
  // Every replica in sync with its master, so that a failover can start at once.
  const inSync = () =>
    until(
      async () => {
        for (const s of servers) {
          const repl = await ask<string>(s.port, 'INFO', 'replication');
          if (repl?.includes('role:slave') && !repl.includes('master_link_status:up')) return false;
        }
        return true;
      },
      30_000,
      100,
    );
  const stop = async () => {
    await Promise.all(servers.map((s) => s.kill()));
  };
  if (!(await healthy()) || !(await inSync())) {
    await stop();
    throw new Error('the cluster did not reach cluster_state:ok with its replicas in sync within 30 s');
  }
  return {
    env: {
      REDIS_CLUSTER_NODES: servers
        .slice(0, 3)
        .map((s) => `127.0.0.1:${s.port}`)
        .join(','),
      ...securedEnv(secured),
    },
    servers,
    masterPorts: async () => {
      const ports: number[] = [];
      for (const s of live()) {
        const role = await ask<unknown[]>(s.port, 'ROLE');
        if (role?.[0] === 'master') ports.push(s.port);
      }
      return ports;
    },
    async masterOf(key) {
      const asker = live()[0]!.port;
      const slot = await ask<number>(asker, 'CLUSTER', 'KEYSLOT', key);
      const ranges = await ask<[number, number, [string, number]][]>(asker, 'CLUSTER', 'SLOTS');
      const owner = ranges?.find(([from, to]) => slot !== undefined && slot >= from && slot <= to);
      if (!owner) throw new Error(`no node of the cluster serves the slot of ${key}`);
      return owner[2][1];
    },
    healthy,
    stop,
  };
}
