import type * as Jose from 'jose';
import type { JwtConfig } from '../../../src/config/auth';
import { InvalidTokenError } from '../../../src/errors';
import { CLOCK_TOLERANCE_S, IdentityVerifier, parseBearer } from '../../../src/ingress/identity';

// jose is an ES module only: Node's own require() loads it where jest's cannot.
const jose = process.getBuiltinModule('node:module').createRequire(__filename)('jose') as typeof Jose;

const SECRET = 'an HS256 secret of at least 32 bytes, as the earlier server required';
const KEY = new TextEncoder().encode(SECRET);

function config(overrides: Partial<JwtConfig> = {}): JwtConfig {
  return { secret: SECRET, jwksUrl: null, issuer: null, audience: null, ...overrides };
}

const now = (): number => Math.floor(Date.now() / 1000);

/** An HS256 token with `claims`, signed with `key` (the configured secret unless given). */
function sign(claims: Jose.JWTPayload, key: Uint8Array = KEY, header: Jose.JWTHeaderParameters = { alg: 'HS256', typ: 'JWT' }): Promise<string> {
  return new jose.SignJWT(claims).setProtectedHeader(header).sign(key);
}

const base64url = (value: string | Uint8Array): string => Buffer.from(value).toString('base64url');

/** The InvalidTokenError that verifying `token` ends with. */
async function refusal(verifier: IdentityVerifier, token: string): Promise<InvalidTokenError> {
  const error = await verifier.verify(token).then(
    () => new Error('expected the token to be refused'),
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(InvalidTokenError);
  const invalid = error as InvalidTokenError;
  expect(invalid.code).toBe('UNAUTHORIZED');
  expect(invalid.details).toEqual({ reason: invalid.reason });
  // What is wrong, never the key or the token.
  expect(invalid.message).not.toContain(SECRET);
  expect(invalid.message).not.toContain(token.split('.')[2] || '\0');
  return invalid;
}

describe('a valid HS256 token', () => {
  const verifier = new IdentityVerifier(config());

  it("gives the earlier server's context: id from sub, email, role, verified, and every claim", async () => {
    const claims = { sub: 'user-1', email: 'ada@example.com', role: 'admin', verified: true, tenant: 't-9', exp: now() + 600, iat: now() };
    await expect(verifier.verify(await sign(claims))).resolves.toEqual({
      id: 'user-1',
      email: 'ada@example.com',
      role: 'admin',
      verified: true,
      claims,
    });
  });

  it('missing fields are null, and verified is false', async () => {
    const context = await verifier.verify(await sign({ exp: now() + 60 }));
    expect(context).toEqual({ id: null, email: null, role: null, verified: false, claims: { exp: expect.any(Number) } });
  });

  it('verified comes from email_verified when there is no verified claim, and "true" as text counts', async () => {
    expect((await verifier.verify(await sign({ sub: 'u', email_verified: true }))).verified).toBe(true);
    expect((await verifier.verify(await sign({ sub: 'u', email_verified: 'true' }))).verified).toBe(true);
    expect((await verifier.verify(await sign({ sub: 'u', verified: false, email_verified: true }))).verified).toBe(false);
    expect((await verifier.verify(await sign({ sub: 'u', verified: 'yes' }))).verified).toBe(false);
  });

  it('a claim of the wrong type is null, not coerced', async () => {
    const context = await verifier.verify(await sign({ sub: 42 as unknown as string, email: ['a@b'], role: { name: 'x' } }));
    expect([context.id, context.email, context.role]).toEqual([null, null, null]);
  });
});

describe('exp and nbf, with 30 s leeway either way', () => {
  const verifier = new IdentityVerifier(config());

  it('the leeway is 30 s', () => {
    expect(CLOCK_TOLERANCE_S).toBe(30);
  });

  it('a token that expired a minute ago is refused as expired, with the time', async () => {
    const exp = now() - 60;
    const error = await refusal(verifier, await sign({ sub: 'u', exp }));
    expect(error.reason).toBe('expired');
    expect(error.message).toBe(`The bearer token is not valid: it expired at ${new Date(exp * 1000).toISOString()} (exp), more than 30 s ago: sign in again.`);
  });

  it('a token that expired 20 s ago is still accepted; 40 s ago it is not', async () => {
    await expect(verifier.verify(await sign({ sub: 'u', exp: now() - 20 }))).resolves.toMatchObject({ id: 'u' });
    expect((await refusal(verifier, await sign({ sub: 'u', exp: now() - 40 }))).reason).toBe('expired');
  });

  it('a token not valid for another two minutes is refused as not yet valid', async () => {
    const nbf = now() + 120;
    const error = await refusal(verifier, await sign({ sub: 'u', nbf, exp: nbf + 600 }));
    expect(error.reason).toBe('not_yet_valid');
    expect(error.message).toContain(`it is not valid before ${new Date(nbf * 1000).toISOString()} (nbf)`);
  });

  it('a token valid in 20 s is accepted already; in 40 s it is not', async () => {
    await expect(verifier.verify(await sign({ sub: 'u', nbf: now() + 20 }))).resolves.toMatchObject({ id: 'u' });
    expect((await refusal(verifier, await sign({ sub: 'u', nbf: now() + 40 }))).reason).toBe('not_yet_valid');
  });

  it('an exp that is not a number is malformed', async () => {
    expect((await refusal(verifier, await sign({ sub: 'u', exp: 'tomorrow' as unknown as number }))).reason).toBe('malformed');
  });
});

describe('issuer and audience, when configured', () => {
  it('a token of another issuer is refused, naming both', async () => {
    const verifier = new IdentityVerifier(config({ issuer: 'alyx' }));
    await expect(verifier.verify(await sign({ sub: 'u', iss: 'alyx' }))).resolves.toMatchObject({ id: 'u' });
    const error = await refusal(verifier, await sign({ sub: 'u', iss: 'someone-else' }));
    expect(error.reason).toBe('wrong_issuer');
    expect(error.message).toBe('The bearer token is not valid: it was issued by "someone-else", and this server accepts only "alyx".');
    expect((await refusal(verifier, await sign({ sub: 'u' }))).message).toContain('it names no issuer (iss)');
  });

  it('a token for another audience is refused; with a list, any one of them is enough', async () => {
    const verifier = new IdentityVerifier(config({ audience: 'my-api' }));
    await expect(verifier.verify(await sign({ sub: 'u', aud: 'my-api' }))).resolves.toMatchObject({ id: 'u' });
    await expect(verifier.verify(await sign({ sub: 'u', aud: ['other', 'my-api'] }))).resolves.toMatchObject({ id: 'u' });
    const error = await refusal(verifier, await sign({ sub: 'u', aud: 'other-api' }));
    expect(error.reason).toBe('wrong_audience');
    expect(error.message).toContain('it is meant for "other-api", and this server accepts only "my-api"');
    expect((await refusal(verifier, await sign({ sub: 'u' }))).reason).toBe('wrong_audience');

    const either = new IdentityVerifier(config({ audience: ['web', 'mobile'] }));
    await expect(either.verify(await sign({ sub: 'u', aud: 'mobile' }))).resolves.toMatchObject({ id: 'u' });
    expect((await refusal(either, await sign({ sub: 'u', aud: 'desktop' }))).reason).toBe('wrong_audience');
  });

  it('neither is checked when not configured', async () => {
    await expect(new IdentityVerifier(config()).verify(await sign({ sub: 'u', iss: 'any', aud: 'any' }))).resolves.toMatchObject({ id: 'u' });
  });
});

describe('tokens that were not signed with the secret', () => {
  const verifier = new IdentityVerifier(config());

  it('a flipped byte in the signature', async () => {
    const [header, payload, signature] = (await sign({ sub: 'u' })).split('.');
    const bytes = Buffer.from(signature, 'base64url');
    bytes[0] ^= 0x01;
    const error = await refusal(verifier, `${header}.${payload}.${base64url(bytes)}`);
    expect(error.reason).toBe('bad_signature');
    expect(error.message).toBe('The bearer token is not valid: its signature does not match (signed with another key, or changed after signing): sign in again.');
  });

  it('a payload changed after signing', async () => {
    const [header, , signature] = (await sign({ sub: 'u', role: 'user' })).split('.');
    const forged = base64url(JSON.stringify({ sub: 'u', role: 'admin' }));
    expect((await refusal(verifier, `${header}.${forged}.${signature}`)).reason).toBe('bad_signature');
  });

  it('a token signed with another secret', async () => {
    const other = new TextEncoder().encode('another secret that is also long enough to sign');
    expect((await refusal(verifier, await sign({ sub: 'u' }, other))).reason).toBe('bad_signature');
  });

  it('an unsigned token (alg "none") is refused as unsigned', async () => {
    const header = base64url(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const payload = base64url(JSON.stringify({ sub: 'u', role: 'admin', exp: now() + 600 }));
    const error = await refusal(verifier, `${header}.${payload}.`);
    expect(error.reason).toBe('unsupported_alg');
    expect(error.message).toBe('The bearer token is not valid: it is not signed (alg "none").');
    expect((await refusal(verifier, `${base64url(JSON.stringify({ alg: 'NONE' }))}.${payload}.`)).reason).toBe('unsupported_alg');
  });

  it('HS384 and HS512 with the right secret are refused: the secret verifies HS256 only', async () => {
    const error = await refusal(verifier, await sign({ sub: 'u' }, KEY, { alg: 'HS512' }));
    expect(error.reason).toBe('unsupported_alg');
    expect(error.message).toBe('The bearer token is not valid: it is signed with "HS512", which this server does not accept (it accepts HS256).');
  });

  it('an RS256 token is refused when only a secret is configured', async () => {
    const { privateKey } = await jose.generateKeyPair('RS256');
    const token = await new jose.SignJWT({ sub: 'u' }).setProtectedHeader({ alg: 'RS256' }).sign(privateKey);
    expect((await refusal(verifier, token)).reason).toBe('unsupported_alg');
  });

  it.each([
    ['empty', ''],
    ['one part', 'abc'],
    ['two parts', 'abc.def'],
    ['four parts', 'a.b.c.d'],
    ['a header that is not JSON', `${base64url('not json')}.${base64url('{}')}.abc`],
    ['a header without alg', `${base64url('{"typ":"JWT"}')}.${base64url('{}')}.abc`],
  ])('%s is malformed', async (_what, token) => {
    const error = await refusal(verifier, token);
    expect(error.reason).toBe('malformed');
  });

  it('a correctly signed payload that is not a JSON object is malformed', async () => {
    const header = base64url(JSON.stringify({ alg: 'HS256' }));
    const payload = base64url('[1,2,3]');
    const signature = await new jose.CompactSign(new TextEncoder().encode('[1,2,3]')).setProtectedHeader({ alg: 'HS256' }).sign(KEY);
    expect(signature.split('.')[1]).toBe(payload);
    const error = await refusal(verifier, `${header}.${payload}.${signature.split('.')[2]}`);
    expect(error.reason).toBe('malformed');
    expect(error.message).toMatch(/^The bearer token is not valid: it is not a well-formed JWT \(.+\)\.$/);
  });
});

describe('configuration', () => {
  it('needs a secret or a JWKS URL', () => {
    expect(() => new IdentityVerifier(config({ secret: null }))).toThrow(TypeError);
  });

  it('fromConfig gives null without auth.jwt', () => {
    expect(IdentityVerifier.fromConfig({ jwt: null })).toBeNull();
    expect(IdentityVerifier.fromConfig({ jwt: config() })).toBeInstanceOf(IdentityVerifier);
  });
});

describe('parseBearer', () => {
  it.each([
    ['Bearer abc.def.ghi', 'abc.def.ghi'],
    ['bearer abc', 'abc'],
    ['BEARER   abc  ', 'abc'],
    ['Bearer a b', 'a b'],
  ])('%p is %p', (header, token) => {
    expect(parseBearer(header)).toBe(token);
  });

  it.each([undefined, '', 'Bearer', 'Bearer   ', 'Basic dXNlcjpwYXNz', 'Token abc', 'Bearerabc'])('%p has no bearer token', (header) => {
    expect(parseBearer(header)).toBeNull();
  });
});
