import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CorsConfig } from '../config/resolve';

/** Sets the CORS response headers for a request that carries an allowed Origin. */
export function applyCors(req: IncomingMessage, res: ServerResponse, cors: CorsConfig): void {
  const origin = req.headers.origin;
  if (!cors.enabled || !origin) return;
  const anyOrigin = cors.allowedOrigins.includes('*');
  if (!anyOrigin && !cors.allowedOrigins.includes(origin)) return;
  // "*" cannot be combined with credentials: echo the origin then.
  res.setHeader('Access-Control-Allow-Origin', anyOrigin && !cors.allowCredentials ? '*' : origin);
  if (!anyOrigin || cors.allowCredentials) res.setHeader('Vary', 'Origin');
  if (cors.allowCredentials) res.setHeader('Access-Control-Allow-Credentials', 'true');
  if (cors.exposedHeaders.length > 0) res.setHeader('Access-Control-Expose-Headers', cors.exposedHeaders.join(', '));
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
