import { expandEnv } from '../config/expand-env';
import { verificationProblem } from '../ingress/webhook-signature';

/** SPEC §13: the methods a route may list, and its default. */
export const ROUTE_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export type RouteMethod = (typeof ROUTE_METHODS)[number];

/** Path prefixes alyx keeps for itself. */
const RESERVED_PREFIXES = ['/api', '/_alyx'];
const PARAM = /^:[A-Za-z_][A-Za-z0-9_]*$/;
/** A static segment: unreserved characters and sub-delimiters, nothing a router reads as syntax. */
const STATIC = /^[A-Za-z0-9._~!$&'+,;=@-]+$/;

/** An extra HTTP path of a function (a manifest's `routes`). */
export interface RouteDef {
  readonly path: string;
  readonly methods: readonly RouteMethod[];
}

export interface WebhookVerificationDef {
  readonly type: 'hmac-sha256' | 'hmac-sha1' | 'stripe' | 'standard-webhooks';
  readonly header: string | null;
  /** Expanded from alyx's environment. A secret: never logged or listed. */
  readonly secret: string;
  readonly skipInvalid: boolean;
}

/** A verified inbound webhook (a manifest's hook of type webhook). */
export interface WebhookDef {
  readonly path: string;
  readonly methods: readonly RouteMethod[];
  readonly mode: 'sync' | 'async';
  /** null: no verification; the function sees `verified: false`. */
  readonly verification: WebhookVerificationDef | null;
}

/** The manifest's keys, as written (after schema validation). */
export interface ManifestRoute {
  path: string;
  methods?: RouteMethod[];
}
export interface ManifestHook {
  type: 'webhook' | 'database' | 'auth';
  mode?: 'sync' | 'async';
  config?: { path: string; methods?: RouteMethod[] };
  verification?: { type: WebhookVerificationDef['type']; header?: string; secret: string; skip_invalid?: boolean };
}

export type ParsedIngress =
  | { ok: true; routes: RouteDef[]; webhooks: WebhookDef[]; ignoredHooks: string[] }
  | { ok: false; problem: string };

/** Checks a manifest's routes and hooks; the first problem makes the function invalid. */
export function parseIngress(routes: readonly ManifestRoute[] = [], hooks: readonly ManifestHook[] = [], env: NodeJS.ProcessEnv = process.env): ParsedIngress {
  const parsedRoutes: RouteDef[] = [];
  for (const [index, route] of routes.entries()) {
    const problem = pathProblem(route.path);
    if (problem) return { ok: false, problem: `routes[${index}] path "${route.path}" ${problem}` };
    parsedRoutes.push({ path: route.path, methods: route.methods ?? [...ROUTE_METHODS] });
  }
  const webhooks: WebhookDef[] = [];
  const ignoredHooks: string[] = [];
  for (const [index, hook] of hooks.entries()) {
    if (hook.type !== 'webhook') {
      ignoredHooks.push(hook.type);
      continue;
    }
    const config = hook.config as NonNullable<ManifestHook['config']>;
    const problem = pathProblem(config.path);
    if (problem) return { ok: false, problem: `hooks[${index}] config.path "${config.path}" ${problem}` };
    const verification = hook.verification;
    const secret = verification ? expandEnv(verification.secret, env) : '';
    if (verification && secret === '') {
      return { ok: false, problem: `hooks[${index}] verification.secret is empty (after expanding ${verification.secret}): set the variable it names, or the secret` };
    }
    const parsed: WebhookVerificationDef | null = verification
      ? { type: verification.type, header: verification.header ?? null, secret, skipInvalid: verification.skip_invalid === true }
      : null;
    const misconfigured = parsed ? verificationProblem({ ...parsed, header: parsed.header ?? undefined }) : null;
    if (misconfigured) return { ok: false, problem: `hooks[${index}] verification: ${misconfigured}` };
    webhooks.push({
      path: config.path,
      methods: config.methods ?? ['POST'],
      mode: hook.mode ?? 'sync',
      verification: parsed,
    });
  }
  return { ok: true, routes: parsedRoutes, webhooks, ignoredHooks };
}

/** Why a route's path cannot be one; null when it can. */
function pathProblem(path: string): string | null {
  if (!path.startsWith('/')) return 'must start with "/"';
  if (RESERVED_PREFIXES.some((prefix) => path === prefix || path.startsWith(`${prefix}/`))) {
    return `is under ${RESERVED_PREFIXES.map((prefix) => `${prefix}/`).join(' or ')}, which alyx keeps for itself: choose another path`;
  }
  const segments = path.slice(1).split('/');
  for (const [index, segment] of segments.entries()) {
    if (segment === '' && index === segments.length - 1) continue; // a trailing slash, or "/"
    if (segment === '*') {
      if (index !== segments.length - 1) return 'has "*" before its end: a "*" may only be the last segment';
      continue;
    }
    if (segment.startsWith(':')) {
      if (!PARAM.test(segment)) return `has the parameter "${segment}": write ":" and a name of letters, digits and "_"`;
      continue;
    }
    if (!STATIC.test(segment)) return `has the segment "${segment}": use letters, digits and - . _ ~ in fixed segments`;
  }
  const names = segments.filter((segment) => segment.startsWith(':'));
  if (new Set(names).size !== names.length) return 'names a parameter twice';
  return null;
}

/** The path as the router sees it: parameter names do not make two paths different. */
export function routeShape(path: string): string {
  return path
    .split('/')
    .map((segment) => (segment.startsWith(':') ? ':' : segment))
    .join('/')
    .replace(/\/$/, '');
}
