import FindMyWay from 'find-my-way';
import type { FunctionSnapshot } from '../../functions/registry';
import { ROUTE_METHODS, type WebhookDef } from '../../functions/routes';

/** What a manifest path leads to. */
export type RouteTarget = { readonly kind: 'route'; readonly functionName: string } | { readonly kind: 'webhook'; readonly functionName: string; readonly webhook: WebhookDef };

export type RouteMatch =
  | { readonly target: RouteTarget; readonly params: Record<string, string> }
  /** The path is known, with other methods: 405 with these in Allow. */
  | { readonly allowed: string[] };

type Router = ReturnType<typeof FindMyWay>;
const routers = new WeakMap<FunctionSnapshot, Router>();

/**
 * SPEC §13: the manifests' routes and webhook paths, matched by find-my-way (static segments
 * win over parameters, a final "*" takes the rest). Built once per snapshot of the functions,
 * so a reload re-reads them; conflicts were settled at discovery.
 */
export function matchFunctionRoute(snapshot: FunctionSnapshot, method: string, pathname: string): RouteMatch | null {
  const router = routerFor(snapshot);
  const wanted = method === 'HEAD' ? 'GET' : method;
  const found = (ROUTE_METHODS as readonly string[]).includes(wanted) ? router.find(wanted as 'GET', pathname) : null;
  if (found) return { target: found.store as RouteTarget, params: { ...found.params } as Record<string, string> };
  const allowed = ROUTE_METHODS.filter((each) => router.find(each, pathname) !== null);
  if (allowed.length === 0) return null;
  return { allowed: allowed.includes('GET') ? [...allowed, 'HEAD'] : allowed };
}

function routerFor(snapshot: FunctionSnapshot): Router {
  let router = routers.get(snapshot);
  if (!router) {
    router = FindMyWay({ ignoreTrailingSlash: true, caseSensitive: true });
    for (const { def } of snapshot.functions.values()) {
      if (def.invalid) continue;
      for (const route of def.routes) router.on([...route.methods], route.path, noop, { kind: 'route', functionName: def.name } satisfies RouteTarget);
      for (const webhook of def.webhooks) router.on([...webhook.methods], webhook.path, noop, { kind: 'webhook', functionName: def.name, webhook } satisfies RouteTarget);
    }
    routers.set(snapshot, router);
  }
  return router;
}

/** find-my-way wants a handler per route; alyx dispatches on the store instead. */
function noop(): void {}
