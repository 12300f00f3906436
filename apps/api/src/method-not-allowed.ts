import { TrieRouter } from 'hono/router/trie-router';

/** One registered route, as Hono lists it in `app.routes`. */
export interface RouteEntry {
  method: string;
  path: string;
}

/** Bucket under which every route is indexed: the lookup is by path alone. */
const ANY = 'ROUTE';

/**
 * The methods a path answers to, for the `Allow` header of a 405 (RFC 9110 §15.5.6: a resource
 * that exists but not for this method is 405, not 404). Derived from the registered routes, so a
 * new route needs no second list; `app.use` middleware (method `ALL`) is no route of its own.
 * HEAD is allowed wherever GET is (Hono answers it from the GET handler).
 *
 * Call it once every route is registered: the routes are indexed on the first lookup.
 */
export function allowedMethods(routes: readonly RouteEntry[]): (path: string) => string[] {
  let router: TrieRouter<string> | undefined;
  return (path) => {
    if (!router) {
      router = new TrieRouter<string>();
      for (const r of routes) if (r.method !== 'ALL') router.add(ANY, r.path, r.method);
    }
    const methods = new Set(router.match(ANY, path)[0].map(([method]) => method));
    if (methods.has('GET')) methods.add('HEAD');
    return [...methods].sort();
  };
}
