import { FunctionNotFoundError, MethodNotAllowedError, NotFoundError, ShuttingDownError } from '../../errors';
import { identifyCaller } from './caller-identity';
import { matchFunctionRoute, type RouteTarget } from './function-routes';
import { invokeForRequest, withInput } from '../invoke-request';
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
  const caller = await identifyCaller(context, request.req.headers.authorization, registered.def);
  const method = request.req.method ?? 'GET';
  const query = Object.fromEntries(request.query);
  await withInput(context, request, async (input) => {
    await invokeForRequest(context, request, name, { ...input, ...params }, { type: 'http', method, path: request.pathname, params, query }, caller);
  });
}
