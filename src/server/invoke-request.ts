import { ClientClosedError } from '../errors';
import { toEnvelope, type InvocationResult } from '../invoke/invoker';
import type { Trigger } from '../state/store';
import type { RegisteredFunction } from '../functions/registry';
import { identifyCaller, type Caller } from './ingress/caller-identity';
import { parseJsonObject, queryToInput, readBody } from './body';
import { sendJson } from './respond';
import type { RequestInfo, ServerContext } from './server-context';
import { headersFor, httpStatusFor } from './status';

/**
 * A call of a function from an HTTP request: who calls (SPEC §13), the input (SPEC §6) with a
 * route's path parameters merged in (they win), then the invocation and its envelope.
 */
export async function invokeFromRequest(
  context: ServerContext,
  request: RequestInfo,
  registered: RegisteredFunction,
  trigger: Trigger,
  params: Readonly<Record<string, string>> = {},
): Promise<void> {
  const caller = await identifyCaller(context, request.req.headers.authorization, registered.def);
  const withParams = Object.keys(params).length > 0;
  await withInput(context, request, async (input) => {
    await invokeForRequest(context, request, registered.def.name, withParams ? { ...input, ...params } : input, trigger, caller);
  });
}

/** The input of a request (SPEC §6): the query string for GET and HEAD, else the JSON body, read within its limits. */
async function withInput(context: ServerContext, { req, query }: RequestInfo, use: (input: Record<string, unknown>) => Promise<void>): Promise<void> {
  if (req.method === 'GET' || req.method === 'HEAD') {
    await use(queryToInput(query));
    return;
  }
  const lease = await readBody(req, context.config.server.maxBodyBytes, context.bodies);
  try {
    await use(parseJsonObject(lease.body));
  } finally {
    lease.release();
  }
}

/** Runs one invocation for an HTTP request and answers with its envelope; a client that goes away ends it. */
export async function invokeForRequest(
  context: ServerContext,
  request: RequestInfo,
  name: string,
  input: Record<string, unknown>,
  trigger: Trigger,
  caller: Caller = { auth: null, callDepth: 0, internalTrigger: null },
): Promise<InvocationResult> {
  const { req, res, requestId } = request;
  // A client that goes away ends its invocation; shutdown can end it too.
  const controller = new AbortController();
  const onClose = (): void => {
    if (!res.writableFinished) controller.abort(new ClientClosedError());
  };
  res.once('close', onClose);
  // Gone while its body was read: the close event has passed, and nothing should spawn.
  if (req.socket.destroyed) onClose();
  const result = await context.inflight.track(controller, context.invoker.invoke(name, input, {
      requestId,
      signal: controller.signal,
      trigger: caller.internalTrigger ?? trigger,
      auth: caller.auth,
      callDepth: caller.callDepth,
      callerWaits: caller.internalTrigger !== null,
    }),);
  res.off('close', onClose);

  const status = result.success ? 200 : httpStatusFor(result.error?.code ?? '', result.reportedByFunction, result.requestedStatus);
  sendJson(res, status, toEnvelope(result), headersFor(result.error?.code));
  context.logger.info(
    { function: name, request_id: requestId, status, duration_ms: result.durationMs, ...(result.error ? { code: result.error.code } : {}) },
    `${req.method} ${name} ${status} ${result.durationMs}ms`,
  );
  return result;
}
