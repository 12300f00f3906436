import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EnvError, parseEnv } from './parse-env.ts';
import { describeRedisTarget, redisEnvFields, redisEnvVars, redisTargetOf } from './redis-env.ts';

/** As every process's schema uses them: the fields spread in, the target made in a transform. */
const Schema = z.object(redisEnvFields).transform((env, ctx) => ({ ...env, redis: redisTargetOf(env, ctx) }));
const parse = (env: Record<string, string>) => parseEnv(Schema, env).redis;

describe('Redis connection settings', () => {
  it('default: one primary on loopback; REDIS_URL as given, with its credentials', () => {
    expect(parse({})).toEqual({ mode: 'single', url: 'redis://127.0.0.1:6379' });
    expect(parse({ REDIS_URL: 'redis://:s3cret@db:6380/2', REDIS_USERNAME: 'gw' })).toEqual({
      mode: 'single',
      url: 'redis://:s3cret@db:6380/2',
      username: 'gw',
    });
    expect(describeRedisTarget(parse({ REDIS_URL: 'redis://u:s3cret@db:6380' }))).toBe('redis://db:6380');
  });

  it('rediss:// is TLS, with a CA, a client certificate and key read from files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'redis-env-'));
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(dir, f), `-----${f}-----`);
    expect(
      parse({
        REDIS_URL: 'rediss://db:6380',
        REDIS_TLS_CA_FILE: join(dir, 'ca.pem'),
        REDIS_TLS_CERT_FILE: join(dir, 'cert.pem'),
        REDIS_TLS_KEY_FILE: join(dir, 'key.pem'),
      }),
    ).toEqual({
      mode: 'single',
      url: 'rediss://db:6380',
      tls: { ca: '-----ca.pem-----', cert: '-----cert.pem-----', key: '-----key.pem-----' },
    });
    expect(parse({ REDIS_URL: 'rediss://db:6380' })).toEqual({
      mode: 'single',
      url: 'rediss://db:6380',
      tls: {},
    });
  });

  it('Sentinel: the sentinels, the master name (default mymaster), the same password and TLS for both', () => {
    expect(parse({ REDIS_SENTINELS: 's1:26379, s2:26380,[::1]:26381', REDIS_PASSWORD: 'pw' })).toEqual({
      mode: 'sentinel',
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26380 },
        { host: '::1', port: 26381 },
      ],
      name: 'mymaster',
      password: 'pw',
    });
    expect(
      parse({ REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'cache', REDIS_TLS: '1' }),
    ).toMatchObject({
      mode: 'sentinel',
      name: 'cache',
      tls: {},
    });
  });

  it('Cluster: some of its nodes, and the same credentials and TLS for every node', () => {
    expect(parse({ REDIS_CLUSTER_NODES: 'n1:7000,n2:7001', REDIS_PASSWORD: 'pw', REDIS_TLS: 'yes' })).toEqual(
      {
        mode: 'cluster',
        nodes: [
          { host: 'n1', port: 7000 },
          { host: 'n2', port: 7001 },
        ],
        password: 'pw',
        tls: {},
      },
    );
  });

  it.each([
    [
      { REDIS_URL: 'redis://a:6379', REDIS_SENTINELS: 's1:26379' },
      'REDIS_SENTINELS: set one of REDIS_URL, REDIS_SENTINELS, not several',
    ],
    [
      { REDIS_SENTINELS: 's1:26379', REDIS_CLUSTER_NODES: 'n1:7000' },
      'REDIS_CLUSTER_NODES: set one of REDIS_SENTINELS, REDIS_CLUSTER_NODES, not several',
    ],
    [{ REDIS_SENTINELS: 's1:26379,s2' }, 'REDIS_SENTINELS: "s2" is not host:port'],
    [{ REDIS_SENTINELS: ',' }, 'REDIS_SENTINELS: list at least one host:port'],
    [{ REDIS_URL: 'http://a' }, 'REDIS_URL: must start with redis:// or rediss://'],
    [{ REDIS_TLS: '1' }, 'REDIS_TLS: for a single primary, say TLS with a rediss:// REDIS_URL'],
    [
      { REDIS_URL: 'rediss://a', REDIS_TLS_CA_FILE: '/nonexistent/ca.pem' },
      'REDIS_TLS_CA_FILE: cannot read /nonexistent/ca.pem',
    ],
  ])('refuses %j, naming the variable', (env, message) => {
    let err: unknown;
    try {
      parse(env as Record<string, string>);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EnvError);
    expect((err as Error).message).toContain(`invalid environment variable ${message}`);
  });

  it.each([
    [{}, {}],
    [
      { REDIS_URL: 'redis://:pw@db:6380/2', REDIS_USERNAME: 'gw' },
      { REDIS_URL: 'redis://:pw@db:6380/2', REDIS_USERNAME: 'gw' },
    ],
    [
      {
        REDIS_SENTINELS: 's1:26379, [::1]:26381',
        REDIS_SENTINEL_NAME: 'cache',
        REDIS_TLS: 'yes',
        REDIS_PASSWORD: 'pw',
      },
      {
        REDIS_SENTINELS: 's1:26379,[::1]:26381',
        REDIS_SENTINEL_NAME: 'cache',
        REDIS_TLS: '1',
        REDIS_PASSWORD: 'pw',
      },
    ],
    [{ REDIS_CLUSTER_NODES: 'n1:7000,n2:7001', REDIS_TLS: '0' }, { REDIS_CLUSTER_NODES: 'n1:7000,n2:7001' }],
  ])('redisEnvVars(%j): the variables that give the same target again', (env, vars) => {
    const parsed = parseEnv(Schema, env as Record<string, string>);
    expect(redisEnvVars(parsed)).toEqual(vars);
    expect(parse(redisEnvVars(parsed))).toEqual(parsed.redis);
    for (const name of Object.keys(vars)) expect(Object.keys(redisEnvFields)).toContain(name);
  });
});
