import { redisEnvFields } from '@llmgw/config';
import { z } from 'zod';

/** Set, any of them: the caller says which Redis and prefix, and the dev-state file is not read. */
const TARGET_VARIABLES = [...Object.keys(redisEnvFields), 'KEY_PREFIX'] as const;

/**
 * What the keys CLI reads besides the api's own variables (ApiEnvSchema, which it parses next):
 * where a running `pnpm start` left its dev-state file, and whether the environment names a
 * Redis or a key prefix itself. Empty counts as unset (parseEnv).
 */
export const KeysCliEnvSchema = z
  .object({
    LLMGW_DEV_STATE_FILE: z.string().min(1).default('.llmgw-dev-state.json'),
    ...Object.fromEntries(TARGET_VARIABLES.map((name) => [name, z.string().optional()])),
  })
  .transform((env) => ({
    LLMGW_DEV_STATE_FILE: env.LLMGW_DEV_STATE_FILE,
    targetSet: TARGET_VARIABLES.some((name) => (env as Record<string, unknown>)[name] !== undefined),
  }));
