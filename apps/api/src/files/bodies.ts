import { FILE_ID_PATTERN, type StoredFile } from '@llmgw/redis';
import { z } from 'zod';

/**
 * What `/v1/files` answers and takes, in OpenAI's shapes (the openai SDKs' `FileObject`,
 * `FileDeleted` and cursor page), as the OpenAPI document states them.
 */

const unixSeconds = z.number().int().meta({ description: 'Unix time, seconds' });

export const FileObject = z
  .object({
    id: z.string().meta({ description: '`file-…`' }),
    object: z.literal('file'),
    bytes: z.number().int().nonnegative(),
    created_at: unixSeconds,
    expires_at: unixSeconds.meta({
      description: 'when the file is deleted (FILE_TTL_DAYS, or expires_after)',
    }),
    filename: z.string(),
    purpose: z.enum(['batch', 'batch_output']),
    status: z.literal('processed'),
    status_details: z.null(),
  })
  .meta({ id: 'File' });

export const FileList = z
  .object({
    object: z.literal('list'),
    data: z.array(FileObject),
    has_more: z.boolean(),
    first_id: z.string().nullable(),
    last_id: z.string().nullable(),
  })
  .meta({ id: 'FileList' });

export const FileDeleted = z
  .object({ id: z.string(), object: z.literal('file'), deleted: z.literal(true) })
  .meta({ id: 'FileDeleted' });

export const fileObject = (f: StoredFile): z.infer<typeof FileObject> => ({
  id: f.id,
  object: 'file',
  bytes: f.bytes,
  created_at: Math.floor(f.createdAt / 1000),
  expires_at: Math.floor(f.expiresAt / 1000),
  filename: f.filename,
  purpose: f.purpose === 'batch_output' ? 'batch_output' : 'batch',
  status: 'processed',
  status_details: null,
});

/** OpenAI's bounds of `expires_after[seconds]` (an hour to 30 days); FILE_TTL_DAYS caps it too. */
export const MIN_EXPIRES_AFTER_S = 3600;

/**
 * The form's text fields: `purpose` (only `batch` is served here), and OpenAI's optional
 * `expires_after` as the SDKs send it (`expires_after[anchor]`, `expires_after[seconds]`).
 */
const UploadFields = z.object({
  purpose: z.literal('batch', {
    error: "must be 'batch': the gateway keeps files for the Batch API only",
  }),
  'expires_after[anchor]': z.literal('created_at', { error: "must be 'created_at'" }).optional(),
  'expires_after[seconds]': z
    .string()
    .regex(/^\d{1,10}$/, 'must be a whole number of seconds')
    .transform(Number)
    .pipe(z.number().int().min(MIN_EXPIRES_AFTER_S, `must be at least ${MIN_EXPIRES_AFTER_S}`))
    .optional()
    .meta({ description: `seconds after created_at, from ${MIN_EXPIRES_AFTER_S} to FILE_TTL_DAYS` }),
});

/** What `POST /v1/files` validates the form's text fields with. */
export const FileUploadFields = UploadFields.superRefine((f, ctx) => {
  const anchor = f['expires_after[anchor]'] !== undefined;
  if (anchor !== (f['expires_after[seconds]'] !== undefined)) {
    ctx.addIssue({
      code: 'custom',
      path: [anchor ? 'expires_after[seconds]' : 'expires_after[anchor]'],
      message: 'expires_after needs both anchor and seconds',
    });
  }
});

/** The form as the document states it: the same fields, and the file. */
export const FileUploadForm = UploadFields.extend({
  file: z.string().meta({
    format: 'binary',
    description:
      'the JSONL file, one request per line: at most BATCH_FILE_MAX_BYTES (200 MiB) and BATCH_MAX_REQUESTS (50,000) lines',
  }),
}).meta({ id: 'FileUpload' });

/** `GET /v1/files`'s query, as OpenAI has it. */
export const FileListQuery = z.object({
  purpose: z.string().max(64).optional(),
  limit: z
    .string()
    .regex(/^\d{1,5}$/, 'must be an integer from 1 to 10000')
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(1, 'must be an integer from 1 to 10000')
        .max(10_000, 'must be an integer from 1 to 10000'),
    )
    .default(10_000),
  order: z.enum(['asc', 'desc'], { error: "must be 'asc' or 'desc'" }).default('desc'),
  after: z.string().regex(FILE_ID_PATTERN, 'must be a file id').optional(),
});
