import type { z } from 'zod';

/** Thrown by {@link parseEnv}; the message names every variable that is wrong, one per line. */
export class EnvError extends Error {
  override name = 'EnvError';
}

/**
 * Parses `env` (normally `process.env`) once with a zod object schema.
 * Empty strings count as unset, so `FOO=` in a compose file falls back to the default
 * instead of failing a number or URL check.
 */
export function parseEnv<S extends z.ZodType>(
  schema: S,
  env: Record<string, string | undefined> = process.env,
): z.infer<S> {
  const cleaned: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && v !== '') cleaned[k] = v;
  }
  const result = schema.safeParse(cleaned);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const name = issue.path.length > 0 ? issue.path.join('.') : 'environment';
    const got = typeof issue.path[0] === 'string' ? cleaned[issue.path[0]] : undefined;
    return `invalid environment variable ${name}: ${issue.message}${got === undefined ? '' : ` (got ${JSON.stringify(got)})`}`;
  });
  throw new EnvError(lines.join('\n'));
}

/**
 * For entry files: parse or print the problem on one line per variable and exit 1.
 * Nothing else in a process reads `process.env`.
 */
export function loadEnvOrExit<S extends z.ZodType>(schema: S, env = process.env): z.infer<S> {
  try {
    return parseEnv(schema, env);
  } catch (err) {
    if (err instanceof EnvError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}
