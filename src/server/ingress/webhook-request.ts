import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { describeQueued } from '../../background/describe';
import { FunctionNotFoundError, ShuttingDownError, WebhookSignatureError } from '../../errors';
import { notReadyError } from '../../functions/registry';
import { verifyWebhook } from '../../ingress/webhook-signature';
import { readBody } from '../body';
import type { RouteTarget } from './function-routes';
import { invokeForRequest } from '../invoke-request';
import { sendJson } from '../respond';
import type { RequestInfo, ServerContext } from '../server-context';

type WebhookTarget = Extract<RouteTarget, { kind: 'webhook' }>;

/**
 * A manifest's webhook (SPEC §13): the signature is checked over the raw body, and the function
 * gets the earlier server's payload, `body` being that raw text. `sync` answers with the
 * envelope, `async` queues it (202). A Standard Webhooks delivery already answered is
 * acknowledged with 200 and not run again.
 */
export async function invokeWebhook(context: ServerContext, request: RequestInfo, target: WebhookTarget, params: Record<string, string>): Promise<void> {
  if (context.isShuttingDown()) throw new ShuttingDownError();
  const { functionName: name, webhook } = target;
  const registered = context.registry.get(name);
  if (!registered) throw new FunctionNotFoundError(name);
  const { req, res, requestId, pathname, query } = request;
  const lease = await readBody(req, context.config.server.maxBodyBytes, context.bodies);
  try {
    const raw = lease.body;
    let verified = false;
    let webhookId: string | null = null;
    if (webhook.verification) {
      const { type, header, secret, skipInvalid } = webhook.verification;
      const result = verifyWebhook({ type, header: header ?? undefined, secret, skipInvalid }, raw, req.headers);
      webhookId = result.webhookId;
      verified = result.ok;
      if (!result.ok) {
        context.logger.warn({ function: name, request_id: requestId, path: pathname, reason: result.reason, skip_invalid: skipInvalid }, `webhook ${pathname}: ${result.reason}`);
        if (!skipInvalid) throw new WebhookSignatureError(result.reason);
      }
    }
    // Only a verified id counts: an unsigned request must not be able to block a delivery to come.
    const known = verified && webhookId !== null;
    if (known && context.webhooksSeen.has(name, webhookId as string)) {
      sendJson(res, 200, { request_id: requestId, success: true, duplicate: true, webhook_id: webhookId });
      return;
    }
    const input: Record<string, unknown> = {
      method: req.method,
      path: pathname,
      headers: { ...req.headers },
      body: isUtf8(raw) ? raw.toString('utf8') : raw.toString('base64'),
      ...(isUtf8(raw) ? {} : { body_encoding: 'base64' }),
      query: Object.fromEntries(query),
      verified,
      webhook_id: webhookId,
      ...(Object.keys(params).length > 0 ? { params } : {}),
    };
    const trigger = { type: 'webhook', method: req.method ?? 'POST', path: pathname, webhook_id: webhookId };
    if (webhook.mode === 'async') {
      const notReady = notReadyError(registered);
      if (notReady) throw notReady;
      // A delivery's id makes its invocation's id: the same delivery queues nothing twice.
      const id = known ? `webhook-${createHash('sha256').update(`${name}\0${webhookId}`).digest('hex').slice(0, 32)}` : requestId;
      const { record } = await context.background.enqueue({ requestId: id, function: name, input, trigger, callbackUrl: null });
      if (known) context.webhooksSeen.add(name, webhookId as string);
      sendJson(res, 202, describeQueued(record));
      return;
    }
    const result = await invokeForRequest(context, request, name, input, trigger);
    if (known && result.success) context.webhooksSeen.add(name, webhookId as string);
  } finally {
    lease.release();
  }
}
