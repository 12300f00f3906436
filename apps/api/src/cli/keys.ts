/**
 * `pnpm keys <command>`: API key administration against the Redis at REDIS_URL (KEY_PREFIX).
 *
 *   pnpm keys create --user alice --tier pro   prints the new key once (only its hash is stored)
 *   pnpm keys list                             id, user, tier, created, revoked
 *   pnpm keys revoke <key_id | key>
 *   pnpm keys dev-key <file>                   the local stack's development key: reuses the one in
 *                                              <file> while it is valid, else creates and saves one
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { describeRedisTarget, loadEnvOrExit } from '@llmgw/config';
import { createKeys, createRedis, quitQuietly, waitReady } from '@llmgw/redis';
import { ApiKeyStore } from '../auth/api-keys.ts';
import { isTier } from '../auth/tiers.ts';
import { ApiEnvSchema } from '../env.ts';

const USAGE =
  'usage: pnpm keys create --user <id> [--tier <tier>] [--quiet] | list | revoke <key_id|key> | dev-key <file>';

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

function fail(msg: string): never {
  process.stderr.write(`${msg}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const [command, ...args] = process.argv.slice(2).filter((a) => a !== '--');
  if (!command || command === '--help' || command === 'help') fail(USAGE);
  const env = loadEnvOrExit(ApiEnvSchema);
  const redis = createRedis(env.redis, 'command', 'keys-cli');
  redis.on('error', () => {});
  try {
    await waitReady(redis, 3000).catch(() => fail(`cannot reach Redis at ${describeRedisTarget(env.redis)}`));
    const store = new ApiKeyStore(
      redis,
      createKeys(env.KEY_PREFIX, { cluster: env.redis.mode === 'cluster' }),
      0,
    );
    switch (command) {
      case 'create': {
        const user = flag(args, 'user') ?? fail(`create needs --user\n${USAGE}`);
        const tier = flag(args, 'tier') ?? 'free';
        if (!isTier(env.TIERS, tier)) fail(`unknown tier '${tier}' (${Object.keys(env.TIERS).join(', ')})`);
        const k = await store.create(user, tier);
        if (args.includes('--quiet')) process.stdout.write(`${k.key}\n`);
        else
          process.stdout.write(
            `${k.key}\n\nid ${k.id}  user ${k.userId}  tier ${k.tier}\nStore it now: it is not shown again.\n`,
          );
        break;
      }
      case 'list': {
        const rows = await store.list();
        if (rows.length === 0) process.stdout.write('no keys\n');
        for (const r of rows) {
          process.stdout.write(
            `${r.id}  ${r.userId.padEnd(20)} ${r.tier.padEnd(12)} ${new Date(r.createdAt).toISOString()}${r.revoked ? '  REVOKED' : ''}\n`,
          );
        }
        break;
      }
      case 'revoke': {
        const target = args[0] ?? fail(`revoke needs a key id or key\n${USAGE}`);
        if (!(await store.revoke(target))) fail(`no such key: ${target}`);
        process.stdout.write(`revoked ${target}\n`);
        break;
      }
      case 'dev-key': {
        const file = args[0] ?? fail(`dev-key needs a file\n${USAGE}`);
        const saved = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
        const record = saved ? await store.lookup(saved) : undefined;
        if (record && !record.revoked) {
          process.stdout.write(`${saved}\n`);
          break;
        }
        const k = await store.create('dev', 'enterprise');
        writeFileSync(file, `${k.key}\n`, { mode: 0o600 });
        process.stdout.write(`${k.key}\n`);
        break;
      }
      default:
        fail(USAGE);
    }
  } finally {
    await quitQuietly(redis);
  }
}

await main();
