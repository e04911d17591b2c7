import fs from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { AlyxError, InternalError, MethodNotAllowedError, ServerStartError } from '../errors';
import { answerPreflight, applyCors } from './cors';
import { requestIdFor } from './request-id';
import { sendError } from './respond';
import { functionRoute } from './ingress/ingress-routes';
import { route, type ServerContext } from './routes';

/** The node:http (or https) server with alyx's handler and the configured timeouts. */
export function createHttpServer(context: ServerContext): http.Server {
  const { server: options } = context.config;
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    void handleRequest(context, req, res);
  };
  const server = options.tls.enabled ? https.createServer(readTls(options.tls), handler) : http.createServer(handler);
  server.requestTimeout = options.readTimeoutMs;
  server.headersTimeout = Math.min(options.readTimeoutMs, 60_000);
  server.keepAliveTimeout = options.idleTimeoutMs;
  // How often node checks requestTimeout and headersTimeout (default 30 s is too coarse).
  (server as http.Server & { connectionsCheckingInterval?: number }).connectionsCheckingInterval = Math.min(1000, options.readTimeoutMs);
  return server;
}

function readTls(tls: { certFile: string; keyFile: string }): { cert: Buffer; key: Buffer } {
  const read = (file: string, key: string): Buffer => {
    try {
      return fs.readFileSync(file);
    } catch (error) {
      throw new ServerStartError(`server.tls.${key} ${file} cannot be read (${(error as NodeJS.ErrnoException).code}): fix the path or disable server.tls.`);
    }
  };
  return { cert: read(tls.certFile, 'cert_file'), key: read(tls.keyFile, 'key_file') };
}

async function handleRequest(context: ServerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const requestId = requestIdFor(req);
  res.setHeader('X-Request-Id', requestId);
  try {
    applyCors(req, res, context.config.server.cors);
    if (req.method === 'OPTIONS') {
      answerPreflight(req, res, context.config.server.cors);
      return;
    }
    // Routed on the raw path: no dot-segment normalisation, so /api/functions/x/../y is not y.
    const target = req.url ?? '/';
    const queryAt = target.indexOf('?');
    const pathname = queryAt === -1 ? target : target.slice(0, queryAt);
    const query = new URLSearchParams(queryAt === -1 ? '' : target.slice(queryAt + 1));
    const method = req.method ?? 'GET';
    // alyx's own endpoints are under /api/, where no manifest route may be: a call to them never looks further.
    const { handler, param } = pathname === '/api' || pathname.startsWith('/api/') ? route(method, pathname) : { handler: functionRoute(context, method, pathname), param: null };
    await handler(context, { req, res, pathname, query, requestId }, param);
  } catch (error) {
    sendFailure(context, res, requestId, error);
    if (!req.complete) closeAfterLinger(req);
  } finally {
    boundWrite(res, context.config.server.writeTimeoutMs, () =>
      context.logger.warn({ request_id: requestId, write_timeout_ms: context.config.server.writeTimeoutMs }, 'closed the connection of a client that did not read its answer within server.write_timeout'),
    );
  }
}

function sendFailure(context: ServerContext, res: ServerResponse, requestId: string, error: unknown): void {
  if (!(error instanceof AlyxError)) {
    context.logger.error({ err: error, request_id: requestId }, 'unexpected error while handling a request');
    sendError(res, requestId, new InternalError());
    return;
  }
  const headers: Record<string, string | number> = {};
  if (error instanceof MethodNotAllowedError) headers.Allow = error.allowed.join(', ');
  sendError(res, requestId, error, headers);
}

/** How long the rest of a refused request's body may keep arriving (and be discarded) after its answer. */
const OVERSIZED_BODY_LINGER_MS = 2000;

/**
 * After a request is refused before its body was read, the rest of the body is discarded as it
 * arrives, not kept, and the connection is cut if it is still coming after a while. Closing at
 * once would reset a connection with unread data in it, and the client, still sending, could
 * lose the answer to the reset.
 */
function closeAfterLinger(req: IncomingMessage): void {
  if (req.complete) return;
  req.resume();
  const socket = req.socket;
  const timer = setTimeout(() => socket.destroy(), OVERSIZED_BODY_LINGER_MS);
  timer.unref();
  // Both listeners go once either fires: a kept-alive connection serves many requests.
  const done = (): void => {
    clearTimeout(timer);
    req.off('end', done);
    socket.off('close', done);
  };
  req.once('end', done);
  socket.once('close', done);
}

/** server.write_timeout: a client that does not read its answer in time loses the connection. */
function boundWrite(res: ServerResponse, writeTimeoutMs: number, onTimeout: () => void): void {
  if (res.writableFinished || res.destroyed) return;
  const timer = setTimeout(() => {
    onTimeout();
    res.destroy();
  }, writeTimeoutMs);
  const clear = (): void => clearTimeout(timer);
  res.once('finish', clear);
  res.once('close', clear);
}
