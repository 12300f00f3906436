import { resolve } from 'node:path';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import { serveStatic } from '@hono/node-server/serve-static';
import type { Logger } from '@llmgw/observability';
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../context.ts';
import type { GatewayApp } from '../hono-app.ts';
import type { ModelRegistry } from '../models/registry.ts';
import type { Dispatcher } from '../queue/dispatcher.ts';

/** Mount path of the board; Bull Board's `setBasePath` must be the same. */
export const BOARD_PATH = '/admin/queues';

export interface BoardDeps {
  models: ModelRegistry;
  dispatcher: Dispatcher;
  readOnly: boolean;
  log: Logger;
}

/**
 * @bull-board/hono hands `serveStatic` a root relative to the process cwd, computed once from
 * @bull-board/ui's absolute folder (which @bull-board/api resolves from its own location in
 * node_modules — the repo's in development, the deployed package's in the image). Turned back into
 * an absolute path here, so the static files are found whatever the cwd is, then or later.
 */
const absoluteServeStatic: typeof serveStatic = (opts) =>
  serveStatic({ ...opts, root: resolve(opts?.root ?? '.') });

/**
 * Bull Board at {@link BOARD_PATH}: per model its BullMQ queue and its batch queue (the Batch
 * API's requests, run in idle slots). The adapter list follows the model
 * registry (every model a worker ever registered), re-read on board requests — at most once a
 * second, the registry's own cache — so a model whose workers start after the api shows up on the
 * next page load or poll. Authentication is the admin guard's, registered before this.
 */
export function mountBullBoard(app: GatewayApp, deps: BoardDeps): void {
  const adapter = new HonoAdapter(absoluteServeStatic).setBasePath(BOARD_PATH);
  const board = createBullBoard({
    queues: [],
    serverAdapter: adapter,
    options: {
      uiConfig: {
        boardTitle: deps.readOnly ? 'llm-gateway (read-only)' : 'llm-gateway',
        miscLinks: [
          { text: 'Keys and usage', url: '/admin' },
          { text: 'Log out', url: '/admin/logout' },
        ],
      },
    },
  });

  const shown = new Set<string>();
  const sync = async () => {
    const { known } = await deps.models.snapshot();
    for (const model of known) {
      if (shown.has(model)) continue;
      board.addQueue(
        new BullMQAdapter(deps.dispatcher.queue(model), {
          readOnlyMode: deps.readOnly,
          displayName: model,
          description: `chat jobs for model ${model}`,
        }),
      );
      board.addQueue(
        new BullMQAdapter(deps.dispatcher.batchQueue(model), {
          readOnlyMode: deps.readOnly,
          displayName: `${model} (batch)`,
          description: `batch requests for model ${model}, run in idle slots only`,
        }),
      );
      shown.add(model);
    }
    for (const model of shown) {
      if (known.has(model)) continue;
      board.removeQueue(deps.dispatcher.queue(model).name);
      board.removeQueue(deps.dispatcher.batchQueue(model).name);
      shown.delete(model);
    }
  };
  const staticPrefix = `${BOARD_PATH}/static/`;
  const syncQueues: MiddlewareHandler<AppEnv> = async function syncBoardQueues(c, next) {
    if (!c.req.path.startsWith(staticPrefix)) {
      // Redis down: the board shows what it had; its own calls then fail visibly.
      await sync().catch((err: Error) => deps.log.warn({ err: err.message }, 'board_queue_sync_failed'));
    }
    await next();
  };
  // Also matches BOARD_PATH itself.
  app.use(`${BOARD_PATH}/*`, syncQueues);
  app.route(BOARD_PATH, adapter.registerPlugin());
}
