import { createRequire as moduleCreateRequire } from 'node:module';
import type * as Jose from 'jose';
import type { JwtConfig } from '../config/auth';
import { InvalidTokenError, type InvalidTokenReason } from '../errors';

/** SPEC §13: what a function sees of a verified token, in the earlier Alyx server's names. */
export interface AuthContext {
  /** The `sub` claim. */
  readonly id: string | null;
  readonly email: string | null;
  readonly role: string | null;
  /** The `verified` claim, else `email_verified`, else false. */
  readonly verified: boolean;
  /** The whole payload. */
  readonly claims: Readonly<Record<string, unknown>>;
}

export interface IdentityVerifierOptions {
  /** How long one fetch of the JWKS may take before the token is refused. */
  jwksTimeoutMs?: number;
  /** The least time between two fetches caused by an unknown `kid`: a flood of made-up kids costs one fetch per period. */
  jwksCooldownMs?: number;
  /** How long fetched keys are used before the next token fetches them again. */
  jwksCacheMaxAgeMs?: number;
}

/** SPEC §13: `exp` and `nbf` are checked with this much leeway either way. */
export const CLOCK_TOLERANCE_S = 30;
/** 5 s per fetch, at most one fetch for unknown kids every 10 s, keys kept 10 min (docs/identity.md). */
export const JWKS_DEFAULTS: Required<IdentityVerifierOptions> = {
  jwksTimeoutMs: 5_000,
  jwksCooldownMs: 10_000,
  jwksCacheMaxAgeMs: 10 * 60_000,
};

/** The earlier Alyx server signs HS256 with the shared secret; nothing else is checked against it. */
const SECRET_ALGORITHMS = ['HS256'];
/** What identity providers sign with; never an HMAC, so a public key can never serve as an HMAC secret. */
const JWKS_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/**
 * Verifies bearer tokens as `auth.jwt` says (SPEC §13), with jose. With both a secret and a
 * JWKS URL, the token's `alg` picks the key: HS256 against the secret, an asymmetric algorithm
 * against the identity provider's keys; either way `iss` and `aud` are checked when configured.
 */
export class IdentityVerifier {
  readonly #config: JwtConfig;
  readonly #secretKey: Uint8Array | null;
  readonly #options: Required<IdentityVerifierOptions>;
  readonly #algorithms: string[];
  readonly #jose: Promise<typeof Jose>;
  #remoteKeys: ReturnType<typeof Jose.createRemoteJWKSet> | undefined;

  constructor(config: JwtConfig, options: IdentityVerifierOptions = {}) {
    if (!config.secret && !config.jwksUrl) throw new TypeError('IdentityVerifier needs auth.jwt.secret or auth.jwt.jwks_url');
    this.#config = config;
    this.#secretKey = config.secret ? new TextEncoder().encode(config.secret) : null;
    this.#options = { ...JWKS_DEFAULTS, ...options };
    this.#algorithms = [...(config.secret ? SECRET_ALGORITHMS : []), ...(config.jwksUrl ? JWKS_ALGORITHMS : [])];
    this.#jose = loadJose();
    this.#jose.catch(() => undefined); // reported by the first verify()
  }

  /** The verifier for a resolved `auth` section; null when no auth.jwt is configured. */
  static fromConfig(auth: { readonly jwt: JwtConfig | null }, options?: IdentityVerifierOptions): IdentityVerifier | null {
    return auth.jwt ? new IdentityVerifier(auth.jwt, options) : null;
  }

  /** The token's identity, or an InvalidTokenError that says what is wrong with it. */
  async verify(token: string): Promise<AuthContext> {
    const jose = await this.#jose;
    const alg = this.#checkHeader(jose, token);
    const options: Jose.JWTVerifyOptions = {
      algorithms: this.#algorithms,
      clockTolerance: CLOCK_TOLERANCE_S,
      ...(this.#config.issuer !== null && { issuer: this.#config.issuer }),
      ...(this.#config.audience !== null && { audience: [this.#config.audience].flat() }),
    };
    try {
      const { payload } = await this.#verifyWithKeys(jose, token, options);
      return toAuthContext(payload);
    } catch (error) {
      throw this.#refusal(error, alg);
    }
  }

  /** The header's `alg` when alyx accepts it; otherwise the reason it does not. */
  #checkHeader(jose: typeof Jose, token: string): string {
    let header: Jose.ProtectedHeaderParameters;
    try {
      if (typeof token !== 'string' || token.split('.').length !== 3) throw new Error('not three parts');
      header = jose.decodeProtectedHeader(token);
    } catch {
      throw refuse('malformed', 'it is not a JWT (three base64url parts, header.payload.signature, with a JSON header)');
    }
    const alg = header.alg;
    if (typeof alg !== 'string' || alg === '') throw refuse('malformed', 'its header names no algorithm (alg)');
    if (alg.toLowerCase() === 'none') throw refuse('unsupported_alg', 'it is not signed (alg "none")');
    if (!this.#algorithms.includes(alg)) throw this.#unsupported(alg);
    return alg;
  }

  async #verifyWithKeys(jose: typeof Jose, token: string, options: Jose.JWTVerifyOptions): Promise<Jose.JWTVerifyResult> {
    try {
      return await jose.jwtVerify(token, (header, input) => this.#keyFor(jose, header, input), options);
    } catch (error) {
      // A token without `kid` that several keys of the set could have signed: jose leaves trying them to the caller.
      if (codeOf(error) !== 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') throw error;
      let last: unknown = error;
      for await (const key of error as AsyncIterable<Jose.CryptoKey>) {
        try {
          return await jose.jwtVerify(token, key, options);
        } catch (tried) {
          if (codeOf(tried) !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') throw tried;
          last = tried;
        }
      }
      throw codeOf(last) === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS' ? refuse('bad_signature', SIGNATURE_PROBLEM) : last;
    }
  }

  async #keyFor(jose: typeof Jose, header: Jose.JWTHeaderParameters, input: Jose.FlattenedJWSInput): Promise<Uint8Array | Jose.CryptoKey> {
    // jose refuses an alg not in `algorithms` before asking for a key; this keeps the pairing even so.
    if (SECRET_ALGORITHMS.includes(header.alg) && this.#secretKey) return this.#secretKey;
    if (!JWKS_ALGORITHMS.includes(header.alg) || !this.#config.jwksUrl) throw this.#unsupported(header.alg);
    this.#remoteKeys ??= jose.createRemoteJWKSet(new URL(this.#config.jwksUrl), {
      timeoutDuration: this.#options.jwksTimeoutMs,
      cooldownDuration: this.#options.jwksCooldownMs,
      cacheMaxAge: this.#options.jwksCacheMaxAgeMs,
      headers: { 'User-Agent': 'alyx' },
    });
    try {
      return await this.#remoteKeys(header, input);
    } catch (error) {
      const code = codeOf(error);
      if (code === 'ERR_JWKS_NO_MATCHING_KEY') {
        const kid = typeof header.kid === 'string' ? `kid ${JSON.stringify(header.kid.slice(0, 100))}` : 'no kid';
        throw refuse('unknown_key', `the identity provider has no ${header.alg} key that matches it (${kid}): sign in again`);
      }
      if (code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') throw error;
      throw new InvalidTokenError('jwks_unavailable', `The bearer token could not be verified: the identity provider's keys could not be fetched (${fetchProblem(error, this.#options.jwksTimeoutMs)}): retry shortly.`);
    }
  }

  #unsupported(alg: string): InvalidTokenError {
    return refuse('unsupported_alg', `it is signed with ${shown(alg.slice(0, 20))}, which this server does not accept (it accepts ${this.#algorithms.join(', ')})`);
  }

  /** Any failure as an InvalidTokenError; jose's errors are told apart by their codes. */
  #refusal(error: unknown, alg: string): InvalidTokenError {
    if (error instanceof InvalidTokenError) return error;
    const { code, claim, reason, payload } = (error ?? {}) as { code?: string; claim?: string; reason?: string; payload?: Jose.JWTPayload };
    switch (code) {
      case 'ERR_JWT_EXPIRED':
        return refuse('expired', `it expired at ${when(payload?.exp)} (exp), more than ${CLOCK_TOLERANCE_S} s ago: sign in again`);
      case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
        if (reason === 'check_failed' && claim === 'nbf') {
          return refuse('not_yet_valid', `it is not valid before ${when(payload?.nbf)} (nbf), more than ${CLOCK_TOLERANCE_S} s from now: check the clock of the issuer or of this server`);
        }
        if (claim === 'iss') {
          const got = typeof payload?.iss === 'string' ? `was issued by ${shown(payload.iss)}` : 'names no issuer (iss)';
          return refuse('wrong_issuer', `it ${got}, and this server accepts only ${shown(this.#config.issuer)}`);
        }
        if (claim === 'aud') {
          const got = payload?.aud === undefined ? 'names no audience (aud)' : `is meant for ${shown(payload.aud)}`;
          return refuse('wrong_audience', `it ${got}, and this server accepts only ${shown(this.#config.audience)}`);
        }
        return refuse('malformed', `its claims are not valid (${joseProblem(error)})`);
      case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
        return refuse('bad_signature', SIGNATURE_PROBLEM);
      case 'ERR_JOSE_ALG_NOT_ALLOWED':
        return this.#unsupported(alg);
      case 'ERR_JWS_INVALID':
      case 'ERR_JWT_INVALID':
      case 'ERR_JOSE_NOT_SUPPORTED':
        return refuse('malformed', `it is not a well-formed JWT (${joseProblem(error)})`);
    }
    return refuse('bad_signature', 'it could not be verified with the configured keys');
  }
}

const SIGNATURE_PROBLEM = 'its signature does not match (signed with another key, or changed after signing): sign in again';

/** The token from `Authorization: Bearer <token>`; null when the header is missing, empty or of another scheme. */
export function parseBearer(header: string | undefined): string | null {
  const match = /^\s*Bearer\s+(\S.*?)\s*$/i.exec(header ?? '');
  return match ? match[1] : null;
}

function toAuthContext(payload: Jose.JWTPayload): AuthContext {
  const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);
  return {
    id: text(payload.sub),
    email: text(payload.email),
    role: text(payload.role),
    verified: flag(payload.verified) ?? flag(payload.email_verified) ?? false,
    claims: payload,
  };
}

/** A boolean claim; some identity providers send "true" and "false" as text. */
function flag(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  return undefined;
}

function refuse(reason: InvalidTokenReason, problem: string): InvalidTokenError {
  return new InvalidTokenError(reason, `The bearer token is not valid: ${problem}.`);
}

function codeOf(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? (error as { code?: string }).code : undefined;
}

/** A NumericDate as an ISO time, for messages. */
function when(seconds: unknown): string {
  return typeof seconds === 'number' && Number.isFinite(seconds) ? new Date(seconds * 1000).toISOString() : String(seconds);
}

/** A claim or setting in a message: quoted, and short, since the token's claims are anyone's text. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** jose's own words for a malformed token: they describe its structure, never a key. */
function joseProblem(error: unknown): string {
  return String((error as { message?: unknown }).message ?? 'unreadable').slice(0, 200);
}

function fetchProblem(error: unknown, timeoutMs: number): string {
  const code = codeOf(error);
  if (code === 'ERR_JWKS_TIMEOUT') return `no answer within ${timeoutMs} ms`;
  if (code === 'ERR_JWKS_INVALID' || code === 'ERR_JWK_INVALID' || code === 'ERR_JOSE_NOT_SUPPORTED') return 'the answer is not a usable JSON Web Key Set';
  const message = String((error as { message?: unknown })?.message ?? '');
  if (message.startsWith('Expected 200 OK')) return 'the answer was not 200 OK';
  if (message.startsWith('Failed to parse')) return 'the answer is not JSON';
  // fetch() puts the system's reason in `cause`, or in the causes of an AggregateError there.
  const cause = (error as { cause?: { code?: string; errors?: Array<{ code?: string }> } })?.cause;
  const reason = cause?.code ?? cause?.errors?.find((each) => each?.code)?.code;
  return reason ? `the connection failed: ${reason}` : 'the connection failed';
}

let jose: Promise<typeof Jose> | undefined;

/**
 * jose 6 is an ES module only. Node's require() loads one from Node 20.19 and 22.12 on, and a
 * real import() does before them (TypeScript compiles a plain import() to require(), hence the
 * Function). require() comes from Node itself: jest replaces a module's own, and node:module's,
 * with one that cannot load ES modules.
 */
function loadJose(): Promise<typeof Jose> {
  jose ??= (async () => {
    const createRequire = process.getBuiltinModule?.('node:module')?.createRequire ?? moduleCreateRequire;
    try {
      return createRequire(__filename)('jose') as typeof Jose;
    } catch (error) {
      if (codeOf(error) !== 'ERR_REQUIRE_ESM') throw error;
      const importModule = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<typeof Jose>;
      return importModule('jose');
    }
  })();
  return jose;
}
