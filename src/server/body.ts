import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { ClientClosedError, InvalidInputError, InvalidJsonError, OverloadedError, PayloadTooLargeError, type AlyxError } from '../errors';
import { parseInputText } from '../invoke/json-input';
import type { BodyBudget } from './body-budget';

/** A request body read whole, holding its share of the budget until `release` (see BodyBudget). */
export interface BodyLease {
  readonly body: Buffer;
  release(): void;
}

/**
 * A body that is refused (over the limit, or past the budget) is still read, and thrown away,
 * up to twice the limit in all and for at most this long, before the refusal is sent. A client
 * that sends all of its body before it reads an answer (python's http.client, and any client
 * that says "Connection: close") would otherwise lose the answer to the reset of a connection
 * closed with its data unread.
 */
const REFUSED_DRAIN_MS = 2000;

/**
 * Reads the request body, never holding more than `maxBytes` of it: past the limit it rejects
 * with PAYLOAD_TOO_LARGE, past the budget with OVERLOADED, in both cases once the rest has been
 * read and discarded (see REFUSED_DRAIN_MS); a declared size over twice the limit rejects at
 * once. A client that goes away mid-body rejects with CLIENT_CLOSED_REQUEST.
 */
export function readBody(req: IncomingMessage, maxBytes: number, budget: BodyBudget): Promise<BodyLease> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > 2 * maxBytes) {
      reject(new PayloadTooLargeError(maxBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let held = 0;
    let received = 0;
    let refusal: AlyxError | null = null;
    let drainTimer: NodeJS.Timeout | undefined;
    let done = false;
    const stop = (error: AlyxError | null): void => {
      if (done) return;
      done = true;
      clearTimeout(drainTimer);
      req.off('data', onData);
      if (error) {
        chunks.length = 0;
        budget.giveBack(held);
        reject(error);
        return;
      }
      let released = false;
      const body = Buffer.concat(chunks.splice(0), received);
      resolve({
        body,
        release: () => {
          if (released) return;
          released = true;
          budget.giveBack(held);
        },
      });
    };
    const refuse = (error: AlyxError): void => {
      refusal = error;
      chunks.length = 0;
      budget.giveBack(held);
      held = 0;
      drainTimer = setTimeout(() => stop(error), REFUSED_DRAIN_MS);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (!refusal && received > maxBytes) refuse(new PayloadTooLargeError(maxBytes));
      else if (!refusal && !budget.take(chunk.length)) refuse(new OverloadedError());
      if (refusal) {
        if (received > 2 * maxBytes) stop(refusal);
        return;
      }
      held += chunk.length;
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => stop(refusal));
    req.once('error', () => stop(new ClientClosedError()));
    req.once('close', () => {
      if (!req.complete) stop(new ClientClosedError());
    });
  });
}

/** A JSON object from a body; empty means {}. The bytes must be UTF-8, as JSON is (RFC 8259). */
export function parseJsonObject(body: Buffer): Record<string, unknown> {
  if (!isUtf8(body)) throw new InvalidJsonError('The request body is not valid UTF-8: send JSON encoded as UTF-8.');
  const parsed = parseInputText(body.toString('utf8'));
  if (parsed.ok) return parsed.value;
  if (parsed.problem === 'not_json') throw new InvalidJsonError(`The request body is not valid JSON (${parsed.reason}): send a JSON object.`);
  if (parsed.problem === 'too_deep') throw new InvalidInputError(`The input is nested too deeply: ${parsed.reason}. Flatten it.`);
  throw new InvalidInputError();
}

/** GET input: the query string as an object; a repeated key gives an array. */
export function queryToInput(search: URLSearchParams): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const key of new Set(search.keys())) {
    const values = search.getAll(key);
    // Defined, not assigned: a key such as __proto__ is an own key of the input, as JSON.parse makes it.
    Object.defineProperty(input, key, { value: values.length > 1 ? values : values[0], enumerable: true, writable: true, configurable: true });
  }
  return input;
}
