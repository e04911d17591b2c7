import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AlyxConfig } from '../config/resolve';
import { NotFoundError, UnauthorizedError } from '../errors';

/**
 * The admin endpoints: open in development; in production they need the admin token, and
 * without one configured they do not exist (404), as SPEC §6 says of the reload endpoint.
 */
export function requireAdmin(config: AlyxConfig, req: IncomingMessage, pathname: string): void {
  if (config.mode !== 'production') return;
  const token = config.adminToken;
  if (!token) throw new NotFoundError(pathname);
  if (!bearerMatches(req.headers.authorization, token)) throw new UnauthorizedError();
}

/** Compares the bearer token in constant time (hashing first hides the length too). */
function bearerMatches(header: string | undefined, token: string): boolean {
  const given = /^Bearer (.+)$/i.exec(header ?? '')?.[1] ?? '';
  const digest = (value: string): Buffer => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(token)) && given.length > 0;
}
