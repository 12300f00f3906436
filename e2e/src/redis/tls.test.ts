import { parseApiEnv } from '@llmgw/api';
import { DEFAULT_MODEL } from '@llmgw/config';
import {
  makeTestCertificates,
  type RedisServerHandle,
  spawnTlsRedis,
  type TestCertificates,
} from '@llmgw/devkit';
import { createRedis, quitQuietly, waitReady } from '@llmgw/redis';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../stack/in-process.ts';

/** The gateway on a Redis that speaks TLS only (a certificate made here, `rediss://`, a CA file). */
describe('on a TLS Redis', () => {
  let certs: TestCertificates;
  let server: RedisServerHandle;
  let stack: Stack;
  beforeAll(async () => {
    certs = makeTestCertificates();
    server = await spawnTlsRedis(certs);
    stack = await startStack({
      redisEnv: { REDIS_URL: server.url, REDIS_TLS_CA_FILE: certs.ca },
      sim: { ttftMs: 2, itlMs: 2 },
    });
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
    await server?.stop();
  });

  it('streams and answers through api → queue → worker over TLS', async () => {
    const res = await stack.chat({ messages: [{ role: 'user', content: 'hello tls' }], max_tokens: 6 });
    expect(res.status).toBe(200);
    expect(res.data.at(-1)).toBe('[DONE]');
    const client = new OpenAI({ baseURL: `${stack.apiUrl}/v1`, apiKey: stack.apiKey, maxRetries: 0 });
    const done = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 4,
    });
    expect(done.choices[0]!.message.content).toMatch(/\w/);
    expect(server.url).toMatch(/^rediss:\/\//);
  });

  it('a client that does not trust the server certificate is refused; a plain connection gets no answer', async () => {
    const untrusted = createRedis(parseApiEnv({ REDIS_URL: server.url }).redis, 'command', 'untrusted');
    const errors: string[] = [];
    untrusted.on('error', (err: Error) => errors.push(err.message));
    await expect(waitReady(untrusted, 1500)).rejects.toThrow(/not ready/);
    expect(errors.join('\n')).toMatch(/self[- ]signed|unable to verify|certificate/i);
    untrusted.disconnect();
    const plain = createRedis(`redis://127.0.0.1:${server.port}`, 'command', 'plain');
    plain.on('error', () => {});
    await expect(waitReady(plain, 1000)).rejects.toThrow(/not ready/);
    await quitQuietly(plain);
  });
});
