import { ConfigError } from '../errors';
import { expandEnv } from './expand-env';
import { isMapping, type LoadedConfigFile } from './load';

/** SPEC §13: how a request's bearer token is verified. */
export interface JwtConfig {
  /** Verifies HS256 tokens (the earlier Alyx server's). A secret: never log it. */
  readonly secret: string | null;
  /** An identity provider's JSON Web Key Set: verifies RS256, ES256, EdDSA and kin. */
  readonly jwksUrl: string | null;
  /** The `iss` a token must carry; null: not checked. */
  readonly issuer: string | null;
  /** The `aud` a token must carry (one of them, for a list); null: not checked. */
  readonly audience: string | readonly string[] | null;
}

export interface AuthConfig {
  /** Null when neither auth.jwt.secret nor auth.jwt.jwks_url is set: bearer tokens are not verified. */
  readonly jwt: JwtConfig | null;
}

/** RFC 7518 §3.2: an HS256 key is at least as long as the hash; the earlier server required as much. */
export const MIN_SECRET_BYTES = 32;

/**
 * Expands ${VAR} and $VAR in alyx.yaml's auth.jwt.secret, as in functions.env (SPEC §2). Only
 * the file's value is expanded: a secret given as ALYX_AUTH_JWT_SECRET is taken as it is, `$`
 * and all. A secret written as variables that are all unset would switch verification off
 * unnoticed, so it is an error unless ALYX_AUTH_JWT_SECRET (`overridden`) replaces it.
 */
export function expandJwtSecret(file: LoadedConfigFile, env: NodeJS.ProcessEnv, overridden: boolean): void {
  const auth = file.values.auth;
  const jwt = isMapping(auth) ? auth.jwt : undefined;
  if (!isMapping(jwt) || typeof jwt.secret !== 'string') return;
  const written = jwt.secret;
  jwt.secret = expandEnv(written, env);
  if (jwt.secret === '' && written !== '' && !overridden) {
    // Text that expands to nothing holds only variable references: naming them shows no secret.
    throw new ConfigError(
      `${file.file}: auth.jwt.secret is ${JSON.stringify(written)}, which expands to nothing: set the variable in alyx's environment ` +
        '(ALYX_* variables are never expanded), set ALYX_AUTH_JWT_SECRET instead, or remove auth.jwt.secret to verify no HS256 tokens',
    );
  }
}

/** The validated `auth` section (defaults filled in) as the resolved configuration. */
export function toAuthConfig(
  auth: { jwt: { secret: string; jwks_url: string; issuer: string; audience: string | string[] } },
): AuthConfig {
  const { secret, jwks_url: jwksUrl, issuer, audience } = auth.jwt;
  if (secret !== '' && Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
    throw new ConfigError(
      `auth.jwt.secret: must be at least ${MIN_SECRET_BYTES} bytes for HS256, as the earlier Alyx server also required ` +
        `(got ${Buffer.byteLength(secret)}): make one with "openssl rand -base64 48"`,
    );
  }
  if (secret === '' && jwksUrl === '') return { jwt: null };
  const audiences = ([] as string[]).concat(audience).filter((each) => each !== '');
  return {
    jwt: {
      secret: secret || null,
      jwksUrl: jwksUrl || null,
      issuer: issuer || null,
      audience: audiences.length === 0 ? null : audiences.length === 1 ? audiences[0] : audiences,
    },
  };
}
