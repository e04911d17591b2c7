import type { ServerResponse } from 'node:http';
import type { AlyxError } from '../errors';
import { headersFor, httpStatusFor } from './status';

/** Writes a JSON body with its status; `write_timeout` bounds how long a slow client may take to read it. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string | number> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(payload),
  });
  res.end(payload);
}

/** The envelope for a failure alyx itself reports, with the status its code maps to. */
export function sendError(res: ServerResponse, requestId: string, error: AlyxError, headers: Record<string, string | number> = {}): void {
  const body: Record<string, unknown> = { request_id: requestId, success: false, error: { code: error.code, message: error.message } };
  if (error.details) (body.error as Record<string, unknown>).details = error.details;
  sendJson(res, httpStatusFor(error.code), body, { ...headersFor(error.code), ...headers });
}
