import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CorsConfig } from '../config/resolve';

/** The CORS headers for a request from `origin` (none when CORS is off or the origin is not allowed). */
export function corsHeaders(origin: string | undefined, cors: CorsConfig): Record<string, string> {
  if (!cors.enabled || !origin) return {};
  const anyOrigin = cors.allowedOrigins.includes('*');
  if (!anyOrigin && !cors.allowedOrigins.includes(origin)) return {};
  // "*" cannot be combined with credentials: echo the origin then.
  const headers: Record<string, string> = { 'Access-Control-Allow-Origin': anyOrigin && !cors.allowCredentials ? '*' : origin };
  if (!anyOrigin || cors.allowCredentials) headers.Vary = 'Origin';
  if (cors.allowCredentials) headers['Access-Control-Allow-Credentials'] = 'true';
  if (cors.exposedHeaders.length > 0) headers['Access-Control-Expose-Headers'] = cors.exposedHeaders.join(', ');
  return headers;
}

/** Sets the CORS response headers for a request that carries an allowed Origin. */
export function applyCors(req: IncomingMessage, res: ServerResponse, cors: CorsConfig): void {
  for (const [name, value] of Object.entries(corsHeaders(req.headers.origin, cors))) res.setHeader(name, value);
}

/** Answers an OPTIONS preflight with 204, with the allowed methods and headers when CORS is on. */
export function answerPreflight(req: IncomingMessage, res: ServerResponse, cors: CorsConfig): void {
  if (cors.enabled && res.hasHeader('Access-Control-Allow-Origin')) {
    res.setHeader('Access-Control-Allow-Methods', cors.allowedMethods.join(', '));
    res.setHeader('Access-Control-Allow-Headers', cors.allowedHeaders.join(', '));
    res.setHeader('Access-Control-Max-Age', String(cors.maxAgeS));
  }
  res.setHeader('Allow', 'GET, POST, PUT, PATCH, DELETE, OPTIONS');
  res.writeHead(204);
  res.end();
}
