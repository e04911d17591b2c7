import crypto, { createHmac, randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import {
  TIMESTAMP_TOLERANCE_MS,
  verificationProblem,
  verifyWebhook,
  type VerifyResult,
  type WebhookVerification,
  type WebhookVerificationType,
} from '../../../src/ingress/webhook-signature';

const NOW_MS = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const NOW_S = NOW_MS / 1000;
const BODY = Buffer.from('{"action":"opened","number":42,"note":"h\u00e9llo"}');

const hook = (type: WebhookVerificationType, secret: string, overrides: Partial<WebhookVerification> = {}): WebhookVerification => ({
  type,
  secret,
  skipInvalid: false,
  ...overrides,
});

/** The body with one byte changed, as a proxy that rewrites it would. */
const alteredBody = (): Buffer => {
  const copy = Buffer.from(BODY);
  copy[copy.length - 2] ^= 0x01;
  return copy;
};

const reasonOf = (result: VerifyResult): string => (result.ok ? '(verified)' : result.reason);

describe('hmac-sha256 (GitHub X-Hub-Signature-256)', () => {
  const secret = 'It\u2019s a Secret to Everybody';
  const verification = hook('hmac-sha256', secret);
  const github = (body: Buffer): string => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

  it('valid: verifies, with no webhook id', () => {
    expect(verifyWebhook(verification, BODY, { 'x-hub-signature-256': github(BODY) }, NOW_MS)).toEqual({ ok: true, webhookId: null });
  });

  it('bare hex, as the earlier server accepted: verifies', () => {
    const bare = github(BODY).slice('sha256='.length);
    expect(verifyWebhook(verification, BODY, { 'x-hub-signature-256': bare }, NOW_MS).ok).toBe(true);
  });

  it('matches GitHub’s documented example', () => {
    // https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
    const headers = { 'x-hub-signature-256': 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17' };
    expect(verifyWebhook(hook('hmac-sha256', "It's a Secret to Everybody"), Buffer.from('Hello, World!'), headers, NOW_MS).ok).toBe(true);
  });

  it('bad signature: fails, naming the header and not the secret', () => {
    const other = `sha256=${createHmac('sha256', 'another secret').update(BODY).digest('hex')}`;
    const result = verifyWebhook(verification, BODY, { 'x-hub-signature-256': other }, NOW_MS);
    expect(result).toEqual({ ok: false, reason: expect.stringContaining('X-Hub-Signature-256 does not match the body'), webhookId: null });
    expect(reasonOf(result)).not.toContain(secret);
  });

  it('missing header: fails with "X-Hub-Signature-256 is missing"', () => {
    expect(reasonOf(verifyWebhook(verification, BODY, {}, NOW_MS))).toBe('X-Hub-Signature-256 is missing');
  });

  it('wrong scheme: a sha1= value on an hmac-sha256 hook fails, even when the SHA-1 is right', () => {
    const sha1 = `sha1=${createHmac('sha1', secret).update(BODY).digest('hex')}`;
    expect(reasonOf(verifyWebhook(verification, BODY, { 'x-hub-signature-256': sha1 }, NOW_MS))).toMatch(/signed with sha1= but this hook expects sha256=/);
  });

  it('bad hex: fails as malformed', () => {
    const truncated = github(BODY).slice(0, -1);
    const notHex = `sha256=${'z'.repeat(64)}`;
    expect(reasonOf(verifyWebhook(verification, BODY, { 'x-hub-signature-256': truncated }, NOW_MS))).toMatch(/is not a SHA-256 signature: expected sha256= and 64 hex digits/);
    expect(reasonOf(verifyWebhook(verification, BODY, { 'x-hub-signature-256': notHex }, NOW_MS))).toMatch(/is not a SHA-256 signature/);
  });

  it('body altered by one byte: fails', () => {
    expect(reasonOf(verifyWebhook(verification, alteredBody(), { 'x-hub-signature-256': github(BODY) }, NOW_MS))).toMatch(/does not match the body/);
  });

  it('multiple signatures: the format carries one, so a repeated header fails even if one value is right', () => {
    const wrong = `sha256=${'0'.repeat(64)}`;
    const joined = { 'x-hub-signature-256': `${wrong}, ${github(BODY)}` }; // how node joins a repeated header
    const asArray = { 'x-hub-signature-256': [wrong, github(BODY)] } as unknown as IncomingHttpHeaders;
    expect(reasonOf(verifyWebhook(verification, BODY, joined, NOW_MS))).toBe('X-Hub-Signature-256 holds more than one value; send it once');
    expect(verifyWebhook(verification, BODY, asArray, NOW_MS).ok).toBe(false);
  });

  it('a configured header is read case-insensitively and named in the reason', () => {
    const custom = hook('hmac-sha256', secret, { header: 'X-Signature' });
    expect(verifyWebhook(custom, BODY, { 'x-signature': github(BODY) }, NOW_MS).ok).toBe(true);
    expect(reasonOf(verifyWebhook(custom, BODY, { 'x-hub-signature-256': github(BODY) }, NOW_MS))).toBe('X-Signature is missing');
  });
});

describe('hmac-sha1 (GitHub X-Hub-Signature)', () => {
  const secret = 'legacy-secret';
  const verification = hook('hmac-sha1', secret);
  const github = (body: Buffer): string => `sha1=${createHmac('sha1', secret).update(body).digest('hex')}`;

  it('valid: verifies from X-Hub-Signature, prefixed or bare', () => {
    expect(verifyWebhook(verification, BODY, { 'x-hub-signature': github(BODY) }, NOW_MS)).toEqual({ ok: true, webhookId: null });
    expect(verifyWebhook(verification, BODY, { 'x-hub-signature': github(BODY).slice(5) }, NOW_MS).ok).toBe(true);
  });

  it('bad signature: fails', () => {
    expect(reasonOf(verifyWebhook(verification, BODY, { 'x-hub-signature': `sha1=${'ab'.repeat(20)}` }, NOW_MS))).toMatch(/X-Hub-Signature does not match the body/);
  });

  it('missing header: fails with "X-Hub-Signature is missing"', () => {
    const sha256Only = { 'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(BODY).digest('hex')}` };
    expect(reasonOf(verifyWebhook(verification, BODY, sha256Only, NOW_MS))).toBe('X-Hub-Signature is missing');
  });

  it('wrong scheme: a sha256= value on an hmac-sha1 hook fails', () => {
    const sha256 = `sha256=${createHmac('sha256', secret).update(BODY).digest('hex')}`;
    expect(reasonOf(verifyWebhook(verification, BODY, { 'x-hub-signature': sha256 }, NOW_MS))).toMatch(/signed with sha256= but this hook expects sha1=/);
  });

  it('body altered by one byte: fails', () => {
    expect(reasonOf(verifyWebhook(verification, alteredBody(), { 'x-hub-signature': github(BODY) }, NOW_MS))).toMatch(/does not match the body/);
  });

  it('multiple signatures: a repeated header fails even if one value is right', () => {
    expect(verifyWebhook(verification, BODY, { 'x-hub-signature': `sha1=${'0'.repeat(40)}, ${github(BODY)}` }, NOW_MS).ok).toBe(false);
  });
});

describe('stripe (Stripe-Signature)', () => {
  const secret = 'whsec_test_5f1c0a7e2b9d4c8a';
  const verification = hook('stripe', secret);
  const v1 = (timestamp: number, body: Buffer, key = secret): string => createHmac('sha256', key).update(`${timestamp}.${body.toString('utf8')}`).digest('hex');
  const stripeHeader = (timestamp: number, ...signatures: string[]): IncomingHttpHeaders => ({
    'stripe-signature': [`t=${timestamp}`, ...signatures.map((signature) => `v1=${signature}`)].join(','),
  });

  it('valid: verifies, with no webhook id', () => {
    expect(verifyWebhook(verification, BODY, stripeHeader(NOW_S, v1(NOW_S, BODY)), NOW_MS)).toEqual({ ok: true, webhookId: null });
  });

  it('a v0 entry (Stripe’s test scheme) next to a good v1 is ignored', () => {
    const headers = { 'stripe-signature': `t=${NOW_S},v1=${v1(NOW_S, BODY)},v0=${'1'.repeat(64)}` };
    expect(verifyWebhook(verification, BODY, headers, NOW_MS).ok).toBe(true);
  });

  it('bad signature: fails, naming the header and not the secret', () => {
    const result = verifyWebhook(verification, BODY, stripeHeader(NOW_S, v1(NOW_S, BODY, 'whsec_other')), NOW_MS);
    expect(reasonOf(result)).toMatch(/^Stripe-Signature does not match the body/);
    expect(reasonOf(result)).not.toContain(secret);
  });

  it('a signature over another timestamp fails (t is part of the signed payload)', () => {
    expect(reasonOf(verifyWebhook(verification, BODY, stripeHeader(NOW_S, v1(NOW_S - 1, BODY)), NOW_MS))).toMatch(/does not match the body/);
  });

  it('missing header: fails with "Stripe-Signature is missing"', () => {
    expect(reasonOf(verifyWebhook(verification, BODY, {}, NOW_MS))).toBe('Stripe-Signature is missing');
  });

  it('wrong scheme: only v0= signatures fail', () => {
    const headers = { 'stripe-signature': `t=${NOW_S},v0=${v1(NOW_S, BODY)}` };
    expect(reasonOf(verifyWebhook(verification, BODY, headers, NOW_MS))).toBe('Stripe-Signature has no v1= signature (found v0=)');
  });

  it('malformed: no t=, a bad t=, a bare value, bad hex', () => {
    const check = (value: string): string => reasonOf(verifyWebhook(verification, BODY, { 'stripe-signature': value }, NOW_MS));
    expect(check(`v1=${v1(NOW_S, BODY)}`)).toBe('Stripe-Signature has no t= timestamp');
    expect(check(`t=soon,v1=${v1(NOW_S, BODY)}`)).toBe('the Stripe-Signature t= is not a unix time in seconds');
    expect(check(v1(NOW_S, BODY))).toMatch(/^Stripe-Signature is malformed/);
    expect(check(`t=${NOW_S},v1=${'g'.repeat(64)}`)).toMatch(/no well-formed v1= signature: expected 64 hex digits/);
  });

  it('old timestamp: fails with its age and the limit', () => {
    const t = NOW_S - 412;
    expect(reasonOf(verifyWebhook(verification, BODY, stripeHeader(t, v1(t, BODY)), NOW_MS))).toBe(
      'the Stripe-Signature timestamp is 412 s old (the limit is 300 s)',
    );
  });

  it('future timestamp: fails as well', () => {
    const t = NOW_S + 301;
    expect(reasonOf(verifyWebhook(verification, BODY, stripeHeader(t, v1(t, BODY)), NOW_MS))).toMatch(/^the Stripe-Signature timestamp is 301 s in the future \(the limit is 300 s\)/);
  });

  it('exactly at the tolerance, either way: still verifies', () => {
    for (const t of [NOW_S - TIMESTAMP_TOLERANCE_MS / 1000, NOW_S + TIMESTAMP_TOLERANCE_MS / 1000]) {
      expect(verifyWebhook(verification, BODY, stripeHeader(t, v1(t, BODY)), NOW_MS).ok).toBe(true);
    }
  });

  it('body altered by one byte: fails', () => {
    expect(reasonOf(verifyWebhook(verification, alteredBody(), stripeHeader(NOW_S, v1(NOW_S, BODY)), NOW_MS))).toMatch(/does not match the body/);
  });

  it('multiple v1 signatures (a secret being rolled), one valid: verifies', () => {
    const headers = stripeHeader(NOW_S, v1(NOW_S, BODY, 'whsec_old_secret'), v1(NOW_S, BODY));
    expect(verifyWebhook(verification, BODY, headers, NOW_MS).ok).toBe(true);
  });
});

describe('standard-webhooks (webhook-id, webhook-timestamp, webhook-signature)', () => {
  const key = randomBytes(24);
  const secret = `whsec_${key.toString('base64')}`;
  const verification = hook('standard-webhooks', secret);
  const id = 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W';
  const sign = (msgId: string, timestamp: number, body: Buffer, signingKey = key): string =>
    `v1,${createHmac('sha256', signingKey).update(`${msgId}.${timestamp}.${body.toString('utf8')}`).digest('base64')}`;
  const deliveryHeaders = (timestamp: number, signature: string, msgId = id): IncomingHttpHeaders => ({
    'webhook-id': msgId,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signature,
  });

  it('valid: verifies, and reports the webhook-id', () => {
    expect(verifyWebhook(verification, BODY, deliveryHeaders(NOW_S, sign(id, NOW_S, BODY)), NOW_MS)).toEqual({ ok: true, webhookId: id });
  });

  it('matches the Standard Webhooks reference example', () => {
    // From the reference libraries' tests (github.com/standard-webhooks/standard-webhooks, libraries/javascript).
    const example = hook('standard-webhooks', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
    const headers = deliveryHeaders(1614265330, 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=', 'msg_p5jXN8AQM9LWM0D4loKWxJek');
    const body = Buffer.from('{"test": 2432232314}');
    expect(verifyWebhook(example, body, headers, 1614265330_000)).toEqual({ ok: true, webhookId: 'msg_p5jXN8AQM9LWM0D4loKWxJek' });
  });

  it('bad signature: fails, still reporting the webhook-id, not the secret', () => {
    const result = verifyWebhook(verification, BODY, deliveryHeaders(NOW_S, sign(id, NOW_S, BODY, randomBytes(24))), NOW_MS);
    expect(result).toEqual({ ok: false, reason: expect.stringMatching(/^webhook-signature does not match the body/), webhookId: id });
    expect(reasonOf(result)).not.toContain(secret.slice('whsec_'.length));
  });

  it('a signature over another webhook-id fails (the id is part of the signed content)', () => {
    const headers = deliveryHeaders(NOW_S, sign('msg_other', NOW_S, BODY));
    expect(reasonOf(verifyWebhook(verification, BODY, headers, NOW_MS))).toMatch(/does not match the body/);
  });

  it('missing headers: each is named, and a present webhook-id is still reported', () => {
    const full = deliveryHeaders(NOW_S, sign(id, NOW_S, BODY));
    const without = (name: string): VerifyResult => verifyWebhook(verification, BODY, { ...full, [name]: undefined }, NOW_MS);
    expect(without('webhook-id')).toEqual({ ok: false, reason: 'webhook-id is missing', webhookId: null });
    expect(without('webhook-timestamp')).toEqual({ ok: false, reason: 'webhook-timestamp is missing', webhookId: id });
    expect(without('webhook-signature')).toEqual({ ok: false, reason: 'webhook-signature is missing', webhookId: id });
  });

  it('wrong scheme: only v1a (asymmetric) signatures fail', () => {
    const v1a = sign(id, NOW_S, BODY).replace(/^v1,/, 'v1a,');
    expect(reasonOf(verifyWebhook(verification, BODY, deliveryHeaders(NOW_S, v1a), NOW_MS))).toBe('webhook-signature has no v1,<base64> signature (found v1a,)');
  });

  it('bad base64 or a bad timestamp: fails as malformed', () => {
    const good = sign(id, NOW_S, BODY);
    const urlSafe = good.replace(/\+/g, '-').replace(/\//g, '_');
    expect(reasonOf(verifyWebhook(verification, BODY, deliveryHeaders(NOW_S, 'v1,not*base64'), NOW_MS))).toMatch(/no well-formed v1 signature/);
    if (urlSafe !== good) expect(verifyWebhook(verification, BODY, deliveryHeaders(NOW_S, urlSafe), NOW_MS).ok).toBe(false);
    const badTimestamp = { ...deliveryHeaders(NOW_S, good), 'webhook-timestamp': '2026-01-01T00:00:00Z' };
    expect(reasonOf(verifyWebhook(verification, BODY, badTimestamp, NOW_MS))).toBe('webhook-timestamp is not a unix time in seconds');
  });

  it('old timestamp: fails with its age, and reports the webhook-id', () => {
    const t = NOW_S - 3600;
    expect(verifyWebhook(verification, BODY, deliveryHeaders(t, sign(id, t, BODY)), NOW_MS)).toEqual({
      ok: false,
      reason: 'webhook-timestamp is 3600 s old (the limit is 300 s)',
      webhookId: id,
    });
  });

  it('future timestamp: fails as well', () => {
    const t = NOW_S + 600;
    expect(reasonOf(verifyWebhook(verification, BODY, deliveryHeaders(t, sign(id, t, BODY)), NOW_MS))).toMatch(/^webhook-timestamp is 600 s in the future/);
  });

  it('body altered by one byte: fails', () => {
    expect(reasonOf(verifyWebhook(verification, alteredBody(), deliveryHeaders(NOW_S, sign(id, NOW_S, BODY)), NOW_MS))).toMatch(/does not match the body/);
  });

  it('multiple signatures (a key being rotated, another scheme), one valid: verifies', () => {
    const signatures = [sign(id, NOW_S, BODY, randomBytes(32)), 'v1a,c29tZXRoaW5nIGVsc2U=', sign(id, NOW_S, BODY)].join(' ');
    expect(verifyWebhook(verification, BODY, deliveryHeaders(NOW_S, signatures), NOW_MS)).toEqual({ ok: true, webhookId: id });
  });

  it('the key is the base64-decoded secret, not its text', () => {
    const signedWithText = `v1,${createHmac('sha256', secret).update(`${id}.${NOW_S}.${BODY.toString('utf8')}`).digest('base64')}`;
    expect(verifyWebhook(verification, BODY, deliveryHeaders(NOW_S, signedWithText), NOW_MS).ok).toBe(false);
  });
});

describe('verificationProblem', () => {
  const swKey = `whsec_${randomBytes(24).toString('base64')}`;

  it('accepts a well-formed block of each type', () => {
    expect(verificationProblem(hook('hmac-sha256', 's3cret'))).toBeNull();
    expect(verificationProblem(hook('hmac-sha1', 's3cret', { header: 'X-Gitea-Signature' }))).toBeNull();
    expect(verificationProblem(hook('stripe', 'whsec_abc123'))).toBeNull();
    expect(verificationProblem(hook('standard-webhooks', swKey))).toBeNull();
  });

  it('an unknown type', () => {
    expect(verificationProblem(hook('hmac-md5' as WebhookVerificationType, 's3cret'))).toBe(
      'verification type "hmac-md5" is not one of hmac-sha256, hmac-sha1, stripe, standard-webhooks',
    );
    expect(verificationProblem(hook('toString' as WebhookVerificationType, 's3cret'))).toMatch(/is not one of/);
  });

  it('an empty or blank secret, whatever the type', () => {
    for (const type of ['hmac-sha256', 'hmac-sha1', 'stripe', 'standard-webhooks'] as const) {
      expect(verificationProblem(hook(type, ''))).toMatch(/^verification secret is empty/);
      expect(verificationProblem(hook(type, '  '))).toMatch(/^verification secret is empty/);
    }
  });

  it('a standard-webhooks secret without whsec_, or not base64 after it', () => {
    expect(verificationProblem(hook('standard-webhooks', randomBytes(24).toString('base64')))).toMatch(/whsec_ followed by base64/);
    expect(verificationProblem(hook('standard-webhooks', 'whsec_'))).toMatch(/not valid base64/);
    expect(verificationProblem(hook('standard-webhooks', 'whsec_not base64!'))).toMatch(/not valid base64/);
  });

  it('a header name that is not a token, or a header on a type with fixed headers', () => {
    expect(verificationProblem(hook('hmac-sha256', 's3cret', { header: 'X Signature' }))).toMatch(/is not a valid HTTP header name/);
    expect(verificationProblem(hook('stripe', 'whsec_abc', { header: 'X-Sig' }))).toMatch(/applies only to hmac-sha256 and hmac-sha1; stripe reads Stripe-Signature/);
    expect(verificationProblem(hook('standard-webhooks', swKey, { header: 'webhook-signature' }))).toMatch(/applies only to hmac/);
  });

  it('verifyWebhook refuses a block with a problem: an empty HMAC key signs for anyone', () => {
    const forged = `sha256=${createHmac('sha256', '').update(BODY).digest('hex')}`;
    const result = verifyWebhook(hook('hmac-sha256', ''), BODY, { 'x-hub-signature-256': forged }, NOW_MS);
    expect(reasonOf(result)).toMatch(/^the hook's verification is misconfigured: verification secret is empty/);
  });

  it('skipInvalid does not change the result', () => {
    const headers = { 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` };
    expect(verifyWebhook(hook('hmac-sha256', 's3cret', { skipInvalid: true }), BODY, headers, NOW_MS)).toEqual(
      verifyWebhook(hook('hmac-sha256', 's3cret'), BODY, headers, NOW_MS),
    );
  });
});

describe('constant-time comparison', () => {
  afterEach(() => jest.restoreAllMocks());

  it.each([
    ['hmac-sha256', (): IncomingHttpHeaders => ({ 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` })],
    ['stripe', (): IncomingHttpHeaders => ({ 'stripe-signature': `t=${NOW_S},v1=${'0'.repeat(64)},v1=${'1'.repeat(64)}` })],
  ] as const)('%s compares every candidate signature with timingSafeEqual', (type, headers) => {
    const spy = jest.spyOn(crypto, 'timingSafeEqual');
    verifyWebhook(hook(type, 's3cret'), BODY, headers(), NOW_MS);
    expect(spy).toHaveBeenCalledTimes(type === 'stripe' ? 2 : 1);
  });

  it('standard-webhooks compares with timingSafeEqual', () => {
    const spy = jest.spyOn(crypto, 'timingSafeEqual');
    const headers = { 'webhook-id': 'msg_1', 'webhook-timestamp': String(NOW_S), 'webhook-signature': `v1,${Buffer.alloc(32).toString('base64')}` };
    verifyWebhook(hook('standard-webhooks', `whsec_${randomBytes(24).toString('base64')}`), BODY, headers, NOW_MS);
    expect(spy).toHaveBeenCalledTimes(1);
  });
});
