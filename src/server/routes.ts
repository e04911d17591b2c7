import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AlyxConfig } from '../config/resolve';
import { ClientClosedError, FunctionNotFoundError, MethodNotAllowedError, NotFoundError, ShuttingDownError, UnauthorizedError } from '../errors';
import { describeAll } from '../functions/describe';
import { FUNCTION_NAME_PATTERN } from '../functions/discovery';
import { toEnvelope, type Invoker } from '../invoke/invoker';
import type { FunctionRegistry } from '../functions/registry';
import type { Logger } from '../logger';
import { parseJsonObject, queryToInput, readBody } from './body';
import type { BodyBudget } from './body-budget';
import type { InflightInvocations } from './inflight';
import { sendJson } from './respond';
import { headersFor, httpStatusFor } from './status';

/** What the request handlers share. */
export interface ServerContext {
  readonly config: AlyxConfig;
  readonly registry: FunctionRegistry;
  readonly invoker: Invoker;
  readonly logger: Logger;
  readonly inflight: InflightInvocations;
  /** The memory request bodies in flight may hold together. */
  readonly bodies: BodyBudget;
  readonly version: string;
  readonly startedAt: number;
  readonly isShuttingDown: () => boolean;
  /** Re-discovers the functions and returns how many there are. */
  readonly reload: () => number;
  readonly env: NodeJS.ProcessEnv;
}

export interface RequestInfo {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly pathname: string;
  readonly query: URLSearchParams;
  readonly requestId: string;
}

type Handler = (context: ServerContext, request: RequestInfo, param: string | null) => Promise<void> | void;

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
  const { req, query } = request;
  const name = decodeName(rawName ?? '');
  if (context.isShuttingDown()) throw new ShuttingDownError();
  if (name === null || !context.registry.get(name)) throw new FunctionNotFoundError(name ?? rawName ?? '');

  if (req.method === 'GET' || req.method === 'HEAD') {
    await invokeWith(context, request, name, queryToInput(query));
    return;
  }
  const lease = await readBody(req, context.config.server.maxBodyBytes, context.bodies);
  try {
    await invokeWith(context, request, name, parseJsonObject(lease.body));
  } finally {
    lease.release();
  }
}

async function invokeWith(context: ServerContext, { req, res, requestId }: RequestInfo, name: string, input: Record<string, unknown>): Promise<void> {
  // A client that goes away ends its invocation; shutdown can end it too.
  const controller = new AbortController();
  const onClose = (): void => {
    if (!res.writableFinished) controller.abort(new ClientClosedError());
  };
  res.once('close', onClose);
  // Gone while its body was read: the close event has passed, and nothing should spawn.
  if (req.socket.destroyed) onClose();
  const result = await context.inflight.track(controller, context.invoker.invoke(name, input, { requestId, signal: controller.signal }));
  res.off('close', onClose);

  const status = result.success ? 200 : httpStatusFor(result.error?.code ?? '', result.reportedByFunction, result.requestedStatus);
  sendJson(res, status, toEnvelope(result), headersFor(result.error?.code));
  context.logger.info(
    { function: name, request_id: requestId, status, duration_ms: result.durationMs, ...(result.error ? { code: result.error.code } : {}) },
    `${req.method} ${name} ${status} ${result.durationMs}ms`,
  );
}

/** A URL path segment as a function name; null when it cannot be one (encoded slashes, dots). */
function decodeName(segment: string): string | null {
  let name: string;
  try {
    name = decodeURIComponent(segment);
  } catch {
    return null;
  }
  return FUNCTION_NAME_PATTERN.test(name) ? name : null;
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
  for (const { def, plan } of context.registry.list()) {
    if (plan.status !== 'ready') reasons.push({ function: def.name, status: plan.status, message: plan.message ?? '' });
  }
  const body = { status: reasons.length === 0 ? 'ready' : 'not_ready', ...counts(context) };
  sendJson(res, reasons.length === 0 ? 200 : 503, reasons.length === 0 ? body : { ...body, reasons });
}

function adminReload(context: ServerContext, { req, res, pathname }: RequestInfo): void {
  if (context.config.mode === 'production') {
    const token = context.config.adminToken;
    if (!token) throw new NotFoundError(pathname);
    if (!bearerMatches(req.headers.authorization, token)) throw new UnauthorizedError();
  }
  const count = context.reload();
  sendJson(res, 200, { success: true, count });
}

/** Compares the bearer token in constant time (hashing first hides the length too). */
function bearerMatches(header: string | undefined, token: string): boolean {
  const given = /^Bearer (.+)$/i.exec(header ?? '')?.[1] ?? '';
  const digest = (value: string): Buffer => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(token)) && given.length > 0;
}
