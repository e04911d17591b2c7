import { FunctionNotFoundError, MethodNotAllowedError, NotFoundError, ShuttingDownError } from '../../errors';
import { matchFunctionRoute, type RouteTarget } from './function-routes';
import { invokeFromRequest } from '../invoke-request';
import type { Handler, RequestInfo, ServerContext } from '../server-context';
import { invokeWebhook } from './webhook-request';

/**
 * A path outside /api/: a manifest's route or webhook (SPEC §13). Throws NOT_FOUND, or
 * METHOD_NOT_ALLOWED with the methods the path has.
 */
export function functionRoute(context: ServerContext, method: string, pathname: string): Handler {
  const match = matchFunctionRoute(context.registry.snapshot, method, pathname);
  if (!match) throw new NotFoundError(pathname);
  if ('allowed' in match) throw new MethodNotAllowedError(method, match.allowed);
  return (ctx, request) => (match.target.kind === 'webhook' ? invokeWebhook(ctx, request, match.target, match.params) : invokeRoute(ctx, request, match.target, match.params));
}

/** Input as on /api/functions/:name, with the path's parameters merged in (they win). */
async function invokeRoute(context: ServerContext, request: RequestInfo, target: RouteTarget, params: Record<string, string>): Promise<void> {
  if (context.isShuttingDown()) throw new ShuttingDownError();
  const name = target.functionName;
  const registered = context.registry.get(name);
  if (!registered) throw new FunctionNotFoundError(name);
  const trigger = { type: 'http', method: request.req.method ?? 'GET', path: request.pathname, params, query: Object.fromEntries(request.query) };
  await invokeFromRequest(context, request, registered, trigger, params);
}
