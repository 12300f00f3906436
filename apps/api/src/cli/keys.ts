/**
 * `pnpm keys <command>`: API key administration against the Redis at REDIS_URL (KEY_PREFIX).
 *
 *   pnpm keys create --user alice --tier pro   prints the new key once (only its hash is stored);
 *     [--name N] [--expires <ISO date-time> | --expires-in <N>d|h|m] [--models a,b]
 *     [--rpm N] [--tpm N] [--tpd N] [--monthly-budget N] [--meta key=value]…
 *   pnpm keys list                             id, user, tier, name, created, expires, revoked
 *   pnpm keys rotate <key_id> [--grace <s>]    a new key under the same id, printed once; the old
 *                                              one keeps working for the grace (default 3600 s)
 *   pnpm keys revoke <key_id | key>            prints the key's id and user, never the key
 *   pnpm keys usage [--start D] [--end D]      the usage ledger, as GET /admin/usage answers it:
 *     [--group-by day,user,key,model,outcome] [--user U] [--key K] [--model M] [--csv | --json]
 *   pnpm keys dev-key <file> [--or <other>]    the local stack's development key: reuses the one in
 *                                              <file> while it is valid; else, with --or, the one in
 *                                              <other> (<file> is left as it is); else creates one
 *                                              and saves it where it looked last
 *
 * Which Redis: with no REDIS_* variable and no KEY_PREFIX set, the running `pnpm start` stack's
 * (its dev-state file, LLMGW_DEV_STATE_FILE), so that the README's `pnpm keys create` makes a key
 * that stack accepts; with none running, the deployments' defaults. A variable set wins.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { type DevStack, describeRedisTarget, liveDevStacks, loadEnvOrExit } from '@llmgw/config';
import { createKeys, createRedis, quitQuietly, waitReady } from '@llmgw/redis';
import { ApiKeyStore, isExpired, KeyPolicy, KeyStateError } from '../auth/api-keys.ts';
import { isTier } from '../auth/tiers.ts';
import { ApiEnvSchema } from '../env.ts';
import { KeysCliEnvSchema } from './env.ts';
import { USAGE_HELP, usageCommand } from './usage-command.ts';

const USAGE =
  'usage: pnpm keys create --user <id> [--tier <tier>] [--name <n>] [--expires <iso> | --expires-in <N>d|h|m] ' +
  '[--models a,b] [--rpm N] [--tpm N] [--tpd N] [--monthly-budget N] [--meta k=v]… [--quiet] | list | ' +
  `revoke <key_id|key> | rotate <key_id> [--grace <seconds>] | ${USAGE_HELP} | dev-key <file> [--or <file>]`;

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Every value of a flag given more than once (`--meta a=1 --meta b=2`). */
function flags(args: string[], name: string): string[] {
  return args.flatMap((a, i) => (a === `--${name}` && args[i + 1] !== undefined ? [args[i + 1]!] : []));
}

const UNIT_MS: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000 };

/**
 * The key's policy from the flags of `create`, checked by the admin API's own schema (the same
 * errors, named by field).
 */
function policyOf(args: string[]): KeyPolicy {
  const int = (name: string) => {
    const v = flag(args, name);
    return v === undefined ? undefined : Number(v);
  };
  const expiresIn = flag(args, 'expires-in');
  let expiresAt: number | string | undefined = flag(args, 'expires');
  if (expiresIn !== undefined) {
    const m =
      /^(\d+)([dhm])$/.exec(expiresIn) ??
      fail(`--expires-in: a number and d, h or m (30d, 12h), not '${expiresIn}'`);
    expiresAt = Date.now() + Number(m[1]) * UNIT_MS[m[2]!]!;
  }
  const limits = { requests_per_min: int('rpm'), tokens_per_min: int('tpm'), tokens_per_day: int('tpd') };
  const meta = flags(args, 'meta').map((kv) => {
    const at = kv.indexOf('=');
    return at > 0 ? [kv.slice(0, at), kv.slice(at + 1)] : fail(`--meta: key=value, not '${kv}'`);
  });
  const raw = {
    name: flag(args, 'name'),
    expires_at: expiresAt,
    models: flag(args, 'models')
      ?.split(',')
      .map((m) => m.trim())
      .filter(Boolean),
    limits: Object.values(limits).some((v) => v !== undefined) ? limits : undefined,
    monthly_budget: int('monthly-budget'),
    metadata: meta.length > 0 ? Object.fromEntries(meta) : undefined,
  };
  const parsed = KeyPolicy.safeParse(JSON.parse(JSON.stringify(raw)));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    fail(`${issue?.path.join('.') || 'key'}: ${issue?.message}`);
  }
  if (parsed.data.expires_at !== undefined && parsed.data.expires_at <= Date.now())
    fail('the expiry must be in the future');
  return parsed.data;
}

function fail(msg: string): never {
  process.stderr.write(`${msg}\n`);
  process.exit(2);
}

/** The running dev stack to use, if any; more than one with different targets is for the caller to choose. */
function devStack(stateFile: string): DevStack | undefined {
  const stacks = liveDevStacks(stateFile);
  const target = (s: DevStack) => JSON.stringify([s.redis_env, s.key_prefix]);
  if (new Set(stacks.map(target)).size > 1) {
    fail(
      `${stacks.length} dev stacks run, on different Redis or key prefixes:\n` +
        stacks
          .map((s) => `  ${s.api}: Redis ${s.redis}, key prefix ${s.key_prefix} (pnpm start, pid ${s.pid})`)
          .join('\n') +
        '\nset REDIS_URL and KEY_PREFIX to the one you mean',
    );
  }
  return stacks[0];
}

// `pnpm keys list | head`: the reader is gone, so there is nobody left to tell.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

async function main(): Promise<void> {
  const [command, ...args] = process.argv.slice(2).filter((a) => a !== '--');
  if (!command || command === '--help' || command === 'help') fail(USAGE);
  const cli = loadEnvOrExit(KeysCliEnvSchema);
  const stack = cli.targetSet ? undefined : devStack(cli.LLMGW_DEV_STATE_FILE);
  const env = loadEnvOrExit(
    ApiEnvSchema,
    stack ? { ...process.env, ...stack.redis_env, KEY_PREFIX: stack.key_prefix } : process.env,
  );
  const where = `Redis ${describeRedisTarget(env.redis)}, key prefix ${env.KEY_PREFIX}`;
  if (stack && !args.includes('--quiet')) {
    process.stderr.write(
      `pnpm keys: the dev stack at ${stack.api} (${where}); set REDIS_URL or KEY_PREFIX for another\n`,
    );
  }
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
        const k = await store.create(user, tier, policyOf(args));
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
          const expires = r.expiresAt === undefined ? '' : `  expires ${new Date(r.expiresAt).toISOString()}`;
          const state = r.revoked ? '  REVOKED' : isExpired(r) ? '  EXPIRED' : '';
          process.stdout.write(
            `${r.id}  ${r.userId.padEnd(20)} ${r.tier.padEnd(12)} ${(r.name ?? '').padEnd(16)} ${new Date(r.createdAt).toISOString()}${expires}${state}\n`,
          );
        }
        break;
      }
      case 'revoke': {
        const target = args[0] ?? fail(`revoke needs a key id or key\n${USAGE}`);
        // A key given on the command line is a secret: it is never printed back, found or not.
        const record = await store.revoke(target);
        if (!record) fail(`no such key${ApiKeyStore.isSecret(target) ? '' : `: ${target}`} (${where})`);
        process.stdout.write(`revoked ${record.id} (user ${record.userId})\n`);
        break;
      }
      case 'rotate': {
        const id = args[0] ?? fail(`rotate needs a key id\n${USAGE}`);
        if (ApiKeyStore.isSecret(id)) fail('rotate takes the key id (key_…), not the key');
        const grace = Number(flag(args, 'grace') ?? 3600);
        if (!Number.isInteger(grace) || grace < 0)
          fail(`--grace: whole seconds ≥ 0, not '${flag(args, 'grace')}'`);
        let k: Awaited<ReturnType<ApiKeyStore['rotate']>>;
        try {
          k = await store.rotate(id, grace * 1000);
        } catch (err) {
          if (err instanceof KeyStateError) fail(`cannot rotate ${id}: ${err.message}`);
          throw err;
        }
        if (!k) fail(`no such key: ${id} (${where})`);
        if (args.includes('--quiet')) process.stdout.write(`${k.key}\n`);
        else
          process.stdout.write(
            `${k.key}\n\nid ${k.id}  user ${k.userId}: the old key works for ${grace} s more\nStore it now: it is not shown again.\n`,
          );
        break;
      }
      case 'usage': {
        const keys = createKeys(env.KEY_PREFIX, { cluster: env.redis.mode === 'cluster' });
        const deps = { redis, keys, retentionDays: env.USAGE_RETENTION_DAYS, prices: env.PRICES };
        process.stdout.write(await usageCommand(args, deps).catch((err: Error) => fail(err.message)));
        break;
      }
      case 'dev-key': {
        const file = args[0] ?? fail(`dev-key needs a file\n${USAGE}`);
        const other = flag(args, 'or');
        let last = file;
        for (const f of other === undefined ? [file] : [file, other]) {
          last = f;
          const saved = existsSync(f) ? readFileSync(f, 'utf8').trim() : '';
          const record = saved ? await store.lookup(saved) : undefined;
          if (record && !record.revoked) {
            process.stdout.write(`${saved}\n`);
            return;
          }
        }
        const k = await store.create('dev', 'enterprise');
        writeFileSync(last, `${k.key}\n`, { mode: 0o600 });
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
