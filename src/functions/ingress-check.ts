import { routeShape } from './routes';
import type { FunctionDef } from './types';

export interface IngressCheckOptions {
  /** Whether alyx.yaml configures auth.jwt: `auth: required` means nothing without it. */
  readonly jwtConfigured: boolean;
}

/**
 * The checks of routes and webhooks that need every function at once (SPEC §13): two functions
 * that claim one method and path are both invalid, each naming the other; so is a function that
 * claims one twice, or asks for `auth: required` where no token can be verified.
 */
export function checkIngress(defs: readonly FunctionDef[], options: IngressCheckOptions): FunctionDef[] {
  const claims = new Map<string, Set<string>>();
  const problems = new Map<string, string>();
  for (const def of defs) {
    if (def.invalid) continue;
    if (def.auth === 'required' && !options.jwtConfigured) {
      problems.set(def.name, 'auth: required needs a way to verify tokens: set auth.jwt.secret or auth.jwt.jwks_url in alyx.yaml, or remove auth: required');
      continue;
    }
    const own = new Set<string>();
    for (const { path, methods } of [...def.routes, ...def.webhooks]) {
      for (const method of methods) {
        const claim = `${method} ${routeShape(path) || '/'}`;
        if (own.has(claim)) problems.set(def.name, `it claims ${claim} twice (in routes or hooks): keep one`);
        own.add(claim);
        claims.set(claim, (claims.get(claim) ?? new Set()).add(def.name));
      }
    }
  }
  for (const [claim, names] of claims) {
    if (names.size < 2) continue;
    for (const name of names) {
      if (problems.has(name)) continue;
      const others = [...names].filter((other) => other !== name).map((other) => `"${other}"`).join(', ');
      problems.set(name, `the route ${claim} is also claimed by function ${others}: give one of them another path`);
    }
  }
  return defs.map((def) => (problems.has(def.name) ? { ...def, invalid: problems.get(def.name) as string, routes: [], webhooks: [], schedules: [] } : def));
}
