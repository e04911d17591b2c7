/**
 * SPEC §10: reuse mode's framing. One process serves many invocations: each request is one line
 * of JSON on its stdin, each response one line on its stdout. Before its first request the
 * function's helper announces that it speaks this framing with one line of its own, the
 * handshake, so that alyx can tell a function written without a helper (it would wait for an
 * end-of-file that never comes) from one that is slow to start.
 */
import { normaliseResponse, type FunctionResponse } from './protocol';

/** The line a helper writes once, before it reads its first request. */
export const HANDSHAKE = '{"alyx_reuse":1}';

/** Reuse mode's request: the section 5 document on one line (JSON.stringify never writes a raw newline). */
export function frameRequest(encodedRequest: string): string {
  return `${encodedRequest}\n`;
}

/** What one line of a reuse process's stdout is. */
export type FramedLine =
  | { readonly kind: 'handshake' }
  | { readonly kind: 'response'; readonly response: FunctionResponse }
  | { readonly kind: 'other' };

/**
 * Reads one stdout line: the handshake, the response to `requestId` (it names that request, or
 * names none and says whether it succeeded), or anything else, which in reuse mode is a fault:
 * stdout carries nothing but responses.
 */
export function readFramedLine(line: string, requestId: string | null): FramedLine {
  const text = line.trim();
  if (text === HANDSHAKE) return { kind: 'handshake' };
  if (requestId === null || !text.startsWith('{') || !text.endsWith('}')) return { kind: 'other' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'other' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { kind: 'other' };
  const fields = value as Record<string, unknown>;
  const named = fields.request_id === requestId;
  if (!named && (fields.request_id !== undefined || typeof fields.success !== 'boolean')) return { kind: 'other' };
  return { kind: 'response', response: normaliseResponse(fields) };
}

/**
 * Splits a byte stream into lines without decoding what is not yet a whole line: a response of
 * megabytes arrives in many chunks, and each chunk is searched once. A line longer than
 * `maxLineBytes` is reported through `onOverflow` instead, once, and nothing more is split.
 */
export class LineFramer {
  readonly #onLine: (line: string) => void;
  readonly #onOverflow: () => void;
  readonly #maxLineBytes: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #overflowed = false;

  constructor(maxLineBytes: number, onLine: (line: string) => void, onOverflow: () => void) {
    this.#maxLineBytes = maxLineBytes;
    this.#onLine = onLine;
    this.#onOverflow = onOverflow;
  }

  /** Bytes of a line not yet ended by its newline. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  push(chunk: Buffer): void {
    let start = 0;
    while (!this.#overflowed) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline === -1) break;
      const piece = chunk.subarray(start, newline);
      const line = this.#pendingBytes === 0 ? piece : Buffer.concat([...this.#pending, piece], this.#pendingBytes + piece.length);
      this.#pending = [];
      this.#pendingBytes = 0;
      if (line.length > this.#maxLineBytes) return this.#overflow();
      this.#onLine(line.toString('utf8'));
      start = newline + 1;
    }
    if (this.#overflowed || start === chunk.length) return;
    this.#pending.push(chunk.subarray(start));
    this.#pendingBytes += chunk.length - start;
    if (this.#pendingBytes > this.#maxLineBytes) this.#overflow();
  }

  #overflow(): void {
    this.#overflowed = true;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#onOverflow();
  }
}
