import { AuthRequiredError, CallDepthExceededError } from '../../errors';
import type { FunctionDef } from '../../functions/types';
import { parseBearer } from '../../ingress/identity';
import { MAX_CALL_DEPTH } from '../../invoke/internal-calls';
import type { Trigger } from '../../state/store';
import type { ServerContext } from '../server-context';

/** Who is calling, as an invocation is told (SPEC §13). */
export interface Caller {
  readonly auth: unknown;
  readonly callDepth: number;
  /** Set for an internal call: `{type: "internal", caller, caller_request_id}`. */
  readonly internalTrigger: Trigger | null;
}

const ANONYMOUS: Caller = { auth: null, callDepth: 0, internalTrigger: null };

/**
 * A running invocation's internal token makes an internal call, with its caller's identity.
 * Otherwise, where auth.jwt is configured, a bearer token must verify (401 if not); where it is
 * not, a bearer is ignored. `auth: required` then needs an identity. Nothing is asked of a call
 * without a bearer to a function that does not require one.
 */
export async function identifyCaller(context: ServerContext, authorization: string | undefined, def: FunctionDef): Promise<Caller> {
  const bearer = parseBearer(authorization);
  if (bearer === null) {
    if (def.auth === 'required') throw new AuthRequiredError(def.name);
    return ANONYMOUS;
  }
  const caller = context.invoker.internalCalls.callerOf(bearer);
  if (caller) {
    const callDepth = caller.depth + 1;
    if (callDepth > MAX_CALL_DEPTH) throw new CallDepthExceededError(callDepth);
    return { auth: caller.auth, callDepth, internalTrigger: { type: 'internal', caller: caller.functionName, caller_request_id: caller.requestId } };
  }
  const auth = context.identity ? await context.identity.verify(bearer) : null;
  if (auth === null && def.auth === 'required') throw new AuthRequiredError(def.name);
  return { auth, callDepth: 0, internalTrigger: null };
}
