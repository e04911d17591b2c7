import type { IncomingMessage } from 'node:http';
import { ClientClosedError, InvalidInputError, InvalidJsonError, PayloadTooLargeError } from '../errors';

/**
 * Reads the request body, never holding more than `maxBytes`: a declared or streamed size
 * over the limit rejects with PAYLOAD_TOO_LARGE at once. A client that goes away mid-body
 * rejects with CLIENT_CLOSED_REQUEST.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      reject(new PayloadTooLargeError(maxBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > maxBytes) {
        req.off('data', onData);
        chunks.length = 0;
        reject(new PayloadTooLargeError(maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks, received)));
    req.once('error', () => reject(new ClientClosedError()));
    req.once('close', () => {
      if (!req.complete) reject(new ClientClosedError());
    });
  });
}

/** A JSON object from a body; empty means {}. */
export function parseJsonObject(body: Buffer): Record<string, unknown> {
  const text = body.toString('utf8');
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidJsonError(`The request body is not valid JSON (${(error as Error).message}): send a JSON object.`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidInputError();
  return value as Record<string, unknown>;
}

/** GET input: the query string as an object; a repeated key gives an array. */
export function queryToInput(search: URLSearchParams): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const key of new Set(search.keys())) {
    const values = search.getAll(key);
    input[key] = values.length > 1 ? values : values[0];
  }
  return input;
}
