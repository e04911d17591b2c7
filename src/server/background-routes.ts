import { randomUUID } from 'node:crypto';
import { DeadLetterNotFoundError, FunctionNotFoundError, InvalidCallbackUrlError, InvalidIdError, InvocationNotFoundError, ShuttingDownError } from '../errors';
import { describeDeadLetter, describeInvocation, describeQueued, describeSchedules } from '../background/describe';
import { STATE_ID_PATTERN } from '../state/store';
import { notReadyError } from '../functions/registry';
import { requireAdmin } from './admin-auth';
import { identifyCaller } from './ingress/caller-identity';
import { parseJsonObject, readBody } from './body';
import { decodeName } from './function-name';
import { sendJson } from './respond';
import type { RequestInfo, ServerContext } from './server-context';

/** POST /api/async/functions/:name (SPEC §11): checked as a synchronous call is, stored, then 202. */
export async function asyncInvoke(context: ServerContext, { req, res, requestId }: RequestInfo, rawName: string | null): Promise<void> {
  if (context.isShuttingDown()) throw new ShuttingDownError();
  const name = decodeName(rawName ?? '');
  const registered = name === null ? undefined : context.registry.get(name);
  if (name === null || !registered) throw new FunctionNotFoundError(name ?? rawName ?? '');
  const notReady = notReadyError(registered);
  if (notReady) throw notReady;
  const caller = await identifyCaller(context, req.headers.authorization, registered.def);
  const callbackUrl = callbackUrlFrom(req.headers['x-callback-url']);
  const lease = await readBody(req, context.config.server.maxBodyBytes, context.bodies);
  let input: Record<string, unknown>;
  try {
    input = parseJsonObject(lease.body);
  } finally {
    lease.release();
  }
  // An X-Request-Id that could not be read back (a leading dot) is replaced, as an invalid one is.
  const id = STATE_ID_PATTERN.test(requestId) ? requestId : randomUUID();
  const { record, created } = await context.background.enqueue({
    requestId: id,
    function: name,
    input,
    trigger: caller.internalTrigger ?? { type: 'async' },
    callbackUrl,
    auth: caller.auth,
    callDepth: caller.callDepth,
  });
  context.logger.info({ function: name, request_id: id, status: 202, created }, `POST async ${name} 202 ${created ? 'queued' : `already ${record.status}`}`);
  sendJson(res, 202, describeQueued(record));
}

/** GET /api/invocations/:id */
export async function invocationState(context: ServerContext, { res }: RequestInfo, rawId: string | null): Promise<void> {
  const id = stateId(rawId, 'request id');
  const record = await context.background.existingStore()?.get(id);
  if (!record) throw new InvocationNotFoundError(id);
  sendJson(res, 200, describeInvocation(record));
}

/** GET /api/dead-letters */
export async function listDeadLetters(context: ServerContext, { req, res, pathname }: RequestInfo): Promise<void> {
  requireAdmin(context.config, req, pathname);
  const letters = (await context.background.existingStore()?.listDeadLetters()) ?? [];
  sendJson(res, 200, { dead_letters: letters.map(describeDeadLetter), count: letters.length });
}

/** POST /api/dead-letters/:id/retry: the invocation is queued again, with its retries afresh. */
export async function retryDeadLetter(context: ServerContext, { req, res, pathname }: RequestInfo, rawId: string | null): Promise<void> {
  requireAdmin(context.config, req, pathname);
  const id = stateId(rawId, 'dead letter id');
  const record = await context.background.existingStore()?.retryDeadLetter(id);
  if (!record) throw new DeadLetterNotFoundError(id);
  context.background.wake();
  sendJson(res, 202, describeQueued(record));
}

/** DELETE /api/dead-letters/:id */
export async function dropDeadLetter(context: ServerContext, { req, res, pathname }: RequestInfo, rawId: string | null): Promise<void> {
  requireAdmin(context.config, req, pathname);
  const id = stateId(rawId, 'dead letter id');
  if (!(await context.background.existingStore()?.dropDeadLetter(id))) throw new DeadLetterNotFoundError(id);
  sendJson(res, 200, { success: true, id });
}

/** GET /api/schedules */
export async function listSchedules(context: ServerContext, { res }: RequestInfo): Promise<void> {
  const runs = (await context.background.existingStore()?.scheduleRuns()) ?? [];
  sendJson(res, 200, { schedules: describeSchedules(context.registry, runs) });
}

/** A path segment as a store id; anything that could reach outside the store is refused first. */
function stateId(raw: string | null, what: string): string {
  let id: string;
  try {
    id = decodeURIComponent(raw ?? '');
  } catch {
    throw new InvalidIdError(what);
  }
  if (!STATE_ID_PATTERN.test(id)) throw new InvalidIdError(what);
  return id;
}

function callbackUrlFrom(header: string | string[] | undefined): string | null {
  if (header === undefined) return null;
  const given = Array.isArray(header) ? header.join(',') : header;
  let url: URL;
  try {
    url = new URL(given);
  } catch {
    throw new InvalidCallbackUrlError(given);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidCallbackUrlError(given);
  return url.href;
}
