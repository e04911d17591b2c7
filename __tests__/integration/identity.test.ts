import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type * as Jose from 'jose';
import type { JwtConfig } from '../../src/config/auth';
import { InvalidTokenError } from '../../src/errors';
import { IdentityVerifier, type IdentityVerifierOptions } from '../../src/ingress/identity';

// jose is an ES module only: Node's own require() loads it where jest's cannot.
const jose = process.getBuiltinModule('node:module').createRequire(__filename)('jose') as typeof Jose;

const SECRET = 'an HS256 secret of at least 32 bytes, as the earlier server required';

/** One signing key and the public JWK the identity provider publishes for it. */
interface SigningKey {
  alg: string;
  kid: string | undefined;
  privateKey: Jose.CryptoKey;
  publicKey: Jose.CryptoKey;
  jwk: Jose.JWK;
}

async function signingKey(alg: string, kid: string | undefined): Promise<SigningKey> {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), ...(kid !== undefined && { kid }), use: 'sig' };
  return { alg, kid, privateKey, publicKey, jwk };
}

function sign(key: SigningKey, claims: Jose.JWTPayload = { sub: 'user-1' }, kid: string | undefined = key.kid): Promise<string> {
  return new jose.SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, typ: 'JWT', ...(kid !== undefined && { kid }) })
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(key.privateKey);
}

/** The identity provider: serves `keys` as a JWKS, or fails as `mode` says. */
const provider = {
  keys: [] as Jose.JWK[],
  mode: 'ok' as 'ok' | 'error' | 'hang',
  fetches: 0,
};
const server = http.createServer((req, res) => {
  provider.fetches += 1;
  if (provider.mode === 'hang') return; // never answers; closed in afterAll
  if (provider.mode === 'error' || req.url !== '/.well-known/jwks.json') {
    res.writeHead(503).end('unavailable');
    return;
  }
  res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys: provider.keys }));
});
let jwksUrl = '';

let rs256: SigningKey;
let es256: SigningKey;
let eddsa: SigningKey;

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  [rs256, es256, eddsa] = await Promise.all([signingKey('RS256', 'rsa-1'), signingKey('ES256', 'ec-1'), signingKey('EdDSA', 'ed-1')]);
});

beforeEach(() => {
  provider.keys = [rs256.jwk, es256.jwk, eddsa.jwk];
  provider.mode = 'ok';
  provider.fetches = 0;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function verifier(overrides: Partial<JwtConfig> = {}, options: IdentityVerifierOptions = {}): IdentityVerifier {
  return new IdentityVerifier({ secret: null, jwksUrl, issuer: null, audience: null, ...overrides }, options);
}

async function refusal(promise: Promise<unknown>): Promise<InvalidTokenError> {
  const error = await promise.then(
    () => new Error('expected the token to be refused'),
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(InvalidTokenError);
  expect((error as InvalidTokenError).code).toBe('UNAUTHORIZED');
  return error as InvalidTokenError;
}

describe("tokens signed with the identity provider's keys", () => {
  it.each(['RS256', 'ES256', 'EdDSA'])('a %s token verifies and gives the context', async (alg) => {
    const key = { RS256: rs256, ES256: es256, EdDSA: eddsa }[alg] as SigningKey;
    const context = await verifier().verify(await sign(key, { sub: 'user-1', email: 'ada@example.com', email_verified: true, role: 'editor' }));
    expect(context).toMatchObject({ id: 'user-1', email: 'ada@example.com', role: 'editor', verified: true });
    expect(context.claims).toMatchObject({ sub: 'user-1', exp: expect.any(Number), iat: expect.any(Number) });
  });

  it('keys are fetched once and then cached', async () => {
    const identity = verifier();
    for (const key of [rs256, es256, eddsa, rs256]) await identity.verify(await sign(key));
    expect(provider.fetches).toBe(1);
  });

  it('issuer and audience are checked for these tokens too', async () => {
    const identity = verifier({ issuer: 'https://id.example', audience: 'my-api' });
    await expect(identity.verify(await sign(rs256, { sub: 'u', iss: 'https://id.example', aud: 'my-api' }))).resolves.toMatchObject({ id: 'u' });
    expect((await refusal(identity.verify(await sign(rs256, { sub: 'u', iss: 'https://evil.example', aud: 'my-api' })))).reason).toBe('wrong_issuer');
    expect((await refusal(identity.verify(await sign(rs256, { sub: 'u', iss: 'https://id.example', aud: 'other' })))).reason).toBe('wrong_audience');
  });

  it("a token signed with another key under a known kid fails on its signature", async () => {
    const impostor = await signingKey('ES256', 'ec-1');
    const error = await refusal(verifier().verify(await sign(impostor)));
    expect(error.reason).toBe('bad_signature');
  });

  it('a token without kid verifies against whichever key of its type signed it', async () => {
    const [first, second] = await Promise.all([signingKey('ES256', undefined), signingKey('ES256', undefined)]);
    provider.keys = [first.jwk, second.jwk];
    await expect(verifier().verify(await sign(second))).resolves.toMatchObject({ id: 'user-1' });
    const stranger = await signingKey('ES256', undefined);
    expect((await refusal(verifier().verify(await sign(stranger)))).reason).toBe('bad_signature');
  });
});

describe('key rotation', () => {
  it('a token with a new kid makes the keys be fetched again, and verifies', async () => {
    const identity = verifier({}, { jwksCooldownMs: 0 });
    await identity.verify(await sign(rs256));
    expect(provider.fetches).toBe(1);

    const rotated = await signingKey('RS256', 'rsa-2');
    provider.keys = [rotated.jwk, es256.jwk];
    await expect(identity.verify(await sign(rotated))).resolves.toMatchObject({ id: 'user-1' });
    expect(provider.fetches).toBe(2);

    // The old key is gone from the set: its tokens fail once the set is fetched again.
    const error = await refusal(identity.verify(await sign(rs256)));
    expect(error.reason).toBe('unknown_key');
    expect(error.message).toBe('The bearer token is not valid: the identity provider has no RS256 key that matches it (kid "rsa-1"): sign in again.');
  });

  it('a kid that is not in the set even after fetching it again is refused', async () => {
    const identity = verifier({}, { jwksCooldownMs: 0 });
    await identity.verify(await sign(rs256));
    const error = await refusal(identity.verify(await sign(rs256, { sub: 'u' }, 'made-up')));
    expect(error.reason).toBe('unknown_key');
    expect(provider.fetches).toBe(2);
  });

  it('unknown kids fetch the keys at most once per cooldown', async () => {
    const identity = verifier(); // the default cooldown, 10 s
    await identity.verify(await sign(rs256));
    for (const kid of ['a', 'b', 'c', 'd']) {
      expect((await refusal(identity.verify(await sign(rs256, { sub: 'u' }, kid)))).reason).toBe('unknown_key');
    }
    expect(provider.fetches).toBe(1);
  });
});

describe('algorithm confusion', () => {
  async function hmacTokens(): Promise<string[]> {
    const pem = new TextEncoder().encode(await jose.exportSPKI(rs256.publicKey));
    const jwkBytes = new TextEncoder().encode(JSON.stringify(rs256.jwk));
    return Promise.all(
      [pem, jwkBytes].map((key) => new jose.SignJWT({ sub: 'admin', role: 'admin' }).setProtectedHeader({ alg: 'HS256', kid: 'rsa-1' }).sign(key)),
    );
  }

  it('an HS256 token keyed with the public key (PEM or JWK) is refused when only a JWKS is configured', async () => {
    for (const token of await hmacTokens()) {
      const error = await refusal(verifier().verify(token));
      expect(error.reason).toBe('unsupported_alg');
      expect(error.message).toContain('it is signed with "HS256", which this server does not accept (it accepts RS256,');
    }
  });

  it('with a secret configured too, such a token is checked against the secret, and fails', async () => {
    for (const token of await hmacTokens()) {
      expect((await refusal(verifier({ secret: SECRET }).verify(token))).reason).toBe('bad_signature');
    }
  });
});

describe('both a secret and a JWKS URL', () => {
  it("HS256 tokens verify against the secret, asymmetric ones against the provider's keys", async () => {
    const identity = verifier({ secret: SECRET });
    const hs256 = await new jose.SignJWT({ sub: 'from-alyx' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));
    await expect(identity.verify(hs256)).resolves.toMatchObject({ id: 'from-alyx' });
    expect(provider.fetches).toBe(0);
    await expect(identity.verify(await sign(es256))).resolves.toMatchObject({ id: 'user-1' });
    expect(provider.fetches).toBe(1);
  });
});

describe('an unreachable identity provider', () => {
  it('an error answer: refused with "could not be fetched"', async () => {
    provider.mode = 'error';
    const error = await refusal(verifier().verify(await sign(rs256)));
    expect(error.reason).toBe('jwks_unavailable');
    expect(error.message).toBe("The bearer token could not be verified: the identity provider's keys could not be fetched (the answer was not 200 OK): retry shortly.");
  });

  it('nothing listening: refused at once', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const started = Date.now();
    const error = await refusal(verifier({ jwksUrl: `http://127.0.0.1:${port}/jwks.json` }).verify(await sign(rs256)));
    expect(error.reason).toBe('jwks_unavailable');
    expect(error.message).toMatch(/^The bearer token could not be verified: the identity provider's keys could not be fetched \(the connection failed.*\): retry shortly\.$/);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('no answer: refused once the fetch timeout passes', async () => {
    provider.mode = 'hang';
    const started = Date.now();
    const error = await refusal(verifier({}, { jwksTimeoutMs: 300 }).verify(await sign(rs256)));
    const elapsed = Date.now() - started;
    expect(error.reason).toBe('jwks_unavailable');
    expect(error.message).toContain("the identity provider's keys could not be fetched (no answer within 300 ms)");
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2_000);
  });

  it('a set that is not a JWKS is refused as unavailable, not as a bad token', async () => {
    provider.keys = 'nope' as unknown as Jose.JWK[];
    const error = await refusal(verifier().verify(await sign(rs256)));
    expect(error.reason).toBe('jwks_unavailable');
  });
});
