import type { z } from 'zod';

/**
 * What a request schema accepts, where zod's JSON Schema cannot tell: a `z.preprocess` is
 * written out as the schema after its transform (so a string that the transform turns into a
 * block list would not be in the document), and a `.pipe` as the schema before it. The schema
 * registered here is only what the OpenAPI document shows for that node (describe.ts); the
 * schema it stands beside still validates the request.
 */
const accepted = new WeakMap<object, z.core.$ZodType>();

/** `schema`, documented as accepting what `accepts` describes. */
export function documentInput<T extends z.core.$ZodType>(schema: T, accepts: z.core.$ZodType): T {
  accepted.set(schema, accepts);
  return schema;
}

/** What `schema` is documented as accepting, if {@link documentInput} said so. */
export const acceptedInput = (schema: object): z.core.$ZodType | undefined => accepted.get(schema);
