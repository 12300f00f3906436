import { ApiError } from '../errors/index.ts';

/** Seconds a client refused because an operator paused the model is asked to wait (maintenance). */
const PAUSED_RETRY_AFTER_S = 30;

/**
 * Throws 503 `model_paused` while an operator holds the model's queue (POST
 * /admin/models/:model/pause): drained for maintenance, its waiting jobs stay queued.
 */
export function refuseIfPaused(model: string, paused: boolean): void {
  if (!paused) return;
  throw new ApiError('model_paused', `model '${model}' is paused for maintenance; retry later`, {
    param: 'model',
    headers: { 'Retry-After': String(PAUSED_RETRY_AFTER_S) },
  });
}
