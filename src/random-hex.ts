import { randomFillSync } from 'node:crypto';

/**
 * Hex strings of cryptographically random bytes, taken from a pooled buffer: one
 * randomFillSync per 4 KiB rather than one per token (each call cost about 0.2 ms while
 * serving, more than the bytes). Every byte is handed out once, as node's randomUUID does.
 */
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let offset = 0;

export function randomHex(bytes: number): string {
  if (bytes > POOL_BYTES) return randomFillSync(Buffer.allocUnsafe(bytes)).toString('hex');
  if (offset + bytes > pool.length) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES));
    offset = 0;
  }
  const hex = pool.toString('hex', offset, offset + bytes);
  offset += bytes;
  return hex;
}
