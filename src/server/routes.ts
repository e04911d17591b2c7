import { FunctionNotFoundError, MethodNotAllowedError, NotFoundError, ShuttingDownError } from '../errors';
import { describeAll } from '../functions/describe';
import { requireAdmin } from './admin-auth';
import { asyncInvoke, dropDeadLetter, invocationState, listDeadLetters, listSchedules, retryDeadLetter } from './background-routes';
import { decodeName } from './function-name';
import { invokeFromRequest } from './invoke-request';
import { sendJson } from './respond';
import type { Handler, RequestInfo, ServerContext } from './server-context';

export type { ServerContext } from './server-context';

interface Route {
  readonly pattern: RegExp;
  readonly methods: Readonly<Record<string, Handler>>;
}

const INVOKE_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

const ROUTES: readonly Route[] = [
  { pattern: /^\/api\/functions\/?$/, methods: { GET: listFunctions } },
  { pattern: /^\/api\/functions\/([^/]+)\/?$/, methods: Object.fromEntries(INVOKE_METHODS.map((method) => [method, invokeFunction])) },
  { pattern: /^\/api\/health\/?$/, methods: { GET: health } },
  { pattern: /^\/api\/ready\/?$/, methods: { GET: ready } },
  { pattern: /^\/api\/admin\/reload\/?$/, methods: { POST: adminReload } },
  { pattern: /^\/api\/async\/functions\/([^/]+)\/?$/, methods: { POST: asyncInvoke } },
  { pattern: /^\/api\/invocations\/([^/]+)\/?$/, methods: { GET: invocationState } },
  { pattern: /^\/api\/schedules\/?$/, methods: { GET: listSchedules } },
  { pattern: /^\/api\/dead-letters\/?$/, methods: { GET: listDeadLetters } },
  { pattern: /^\/api\/dead-letters\/([^/]+)\/?$/, methods: { DELETE: dropDeadLetter } },
  { pattern: /^\/api\/dead-letters\/([^/]+)\/retry\/?$/, methods: { POST: retryDeadLetter } },
];

/**
 * Finds the handler for a request; throws NOT_FOUND or METHOD_NOT_ALLOWED. HEAD is answered
 * wherever GET is, by the GET handler: node's http sends the headers of that answer without its body.
 */
export function route(method: string, pathname: string): { handler: Handler; param: string | null } {
  for (const candidate of ROUTES) {
    const match = candidate.pattern.exec(pathname);
    if (!match) continue;
    const handler = candidate.methods[method === 'HEAD' ? 'GET' : method];
    if (!handler) throw new MethodNotAllowedError(method, allowedMethods(candidate));
    return { handler, param: match[1] ?? null };
  }
  throw new NotFoundError(pathname);
}

function allowedMethods(candidate: Route): string[] {
  const methods = Object.keys(candidate.methods);
  return methods.includes('GET') ? [...methods, 'HEAD'] : methods;
}

function listFunctions(context: ServerContext, { res }: RequestInfo): void {
  sendJson(res, 200, describeAll(context.registry.list(), context.config));
}

async function invokeFunction(context: ServerContext, request: RequestInfo, rawName: string | null): Promise<void> {
  const name = decodeName(rawName ?? '');
  if (context.isShuttingDown()) throw new ShuttingDownError();
  const registered = name === null ? undefined : context.registry.get(name);
  if (name === null || !registered) throw new FunctionNotFoundError(name ?? rawName ?? '');
  await invokeFromRequest(context, request, registered, { type: 'http', method: request.req.method ?? 'GET', path: request.pathname });
}

function counts(context: ServerContext): { functions: number; ready: number } {
  const all = context.registry.list();
  return { functions: all.length, ready: all.filter((fn) => fn.plan.status === 'ready').length };
}

function health(context: ServerContext, { res }: RequestInfo): void {
  sendJson(res, 200, {
    status: 'ok',
    mode: context.config.mode,
    version: context.version,
    uptime_s: Math.floor((Date.now() - context.startedAt) / 1000),
    ...counts(context),
  });
}

function ready(context: ServerContext, { res }: RequestInfo): void {
  const reasons: Array<Record<string, string>> = [];
  if (context.isShuttingDown()) reasons.push({ reason: 'shutting_down', message: 'the server is shutting down' });
  const stateDown = context.background.unavailable();
  if (stateDown) reasons.push({ reason: 'state_unavailable', message: `the state store is unreachable: ${stateDown}` });
  for (const { def, plan } of context.registry.list()) {
    if (plan.status !== 'ready') reasons.push({ function: def.name, status: plan.status, message: plan.message ?? '' });
  }
  const body = { status: reasons.length === 0 ? 'ready' : 'not_ready', ...counts(context) };
  sendJson(res, reasons.length === 0 ? 200 : 503, reasons.length === 0 ? body : { ...body, reasons });
}

function adminReload(context: ServerContext, { req, res, pathname }: RequestInfo): void {
  requireAdmin(context.config, req, pathname);
  const count = context.reload();
  sendJson(res, 200, { success: true, count });
}
