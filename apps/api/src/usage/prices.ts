import { z } from 'zod';

/** USD per million tokens of one model, as PRICES_JSON states them. */
export const ModelPrice = z.strictObject({
  input: z.number().nonnegative(),
  output: z.number().nonnegative(),
});
export type ModelPrice = z.infer<typeof ModelPrice>;

/** The price of each model that has one (PRICES_JSON). */
export type Prices = ReadonlyMap<string, ModelPrice>;

const EXAMPLE = '{"<model>":{"input":0.5,"output":1.5}} (USD per million prompt and completion tokens)';

/**
 * PRICES_JSON parsed; unset: undefined (no prices, no cost columns). A Map, not the object: a
 * model named like one of Object's own properties is a model like any other. Throws with what is
 * wrong, for env.ts to name the variable.
 */
export function parsePrices(json: string | undefined): Prices | undefined {
  if (json === undefined) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new Error(`not JSON (${(err as Error).message}); expected ${EXAMPLE}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error(`expected an object of models: ${EXAMPLE}`);
  }
  const prices = new Map<string, ModelPrice>();
  for (const [model, price] of Object.entries(raw)) {
    const parsed = ModelPrice.safeParse(price);
    if (model === '' || !parsed.success) {
      const issue = parsed.error?.issues[0];
      const what = issue ? `${[model, ...issue.path].join('.')}: ${issue.message}` : 'a model name is empty';
      throw new Error(`${what}; expected ${EXAMPLE}`);
    }
    prices.set(model, parsed.data);
  }
  return prices;
}
