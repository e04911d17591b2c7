import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export type WebhookVerificationType = 'hmac-sha256' | 'hmac-sha1' | 'stripe' | 'standard-webhooks';

/** A manifest's `verification` block, with `skip_invalid` resolved. */
export interface WebhookVerification {
  readonly type: WebhookVerificationType;
  readonly header?: string;
  readonly secret: string;
  readonly skipInvalid: boolean;
}

export type VerifyResult = { ok: true; webhookId: string | null } | { ok: false; reason: string; webhookId: string | null };

/** How far a signed timestamp may be from now, in either direction (SPEC §13). */
export const TIMESTAMP_TOLERANCE_MS = 5 * 60_000;

interface Scheme {
  /** The header that names the delivery, reported as `webhookId` whether or not it verifies. */
  readonly idHeader?: string;
  /** What is wrong with a verification block of this type beyond an empty secret, or null. */
  problem(verification: WebhookVerification): string | null;
  /** Why the delivery does not verify, or null when it does. */
  check(verification: WebhookVerification, rawBody: Buffer, headers: IncomingHttpHeaders, nowMs: number): string | null;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const SCHEME_KEY = /^[A-Za-z0-9]{1,8}$/;
const UNIX_SECONDS = /^\d{1,12}$/;
const WHSEC_PREFIX = 'whsec_';
const SHA256_BYTES = 32;

function hmacScheme(algorithm: 'sha256' | 'sha1', defaultHeader: string): Scheme {
  const digestBytes = algorithm === 'sha256' ? SHA256_BYTES : 20;
  const label = algorithm === 'sha256' ? 'SHA-256' : 'SHA-1';
  return {
    problem: ({ header }) =>
      header === undefined || HEADER_NAME.test(header) ? null : `verification header ${JSON.stringify(header)} is not a valid HTTP header name`,
    check({ header, secret }, rawBody, headers) {
      const name = header ?? defaultHeader;
      const value = headerValue(headers, name);
      if (value === undefined) return `${name} is missing`;
      if (value.includes(',')) return `${name} holds more than one value; send it once`;
      const prefixed = /^([A-Za-z0-9-]{1,16})=(.*)$/.exec(value);
      if (prefixed && prefixed[1].toLowerCase() !== algorithm) {
        return `${name} is signed with ${prefixed[1]}= but this hook expects ${algorithm}= (type hmac-${algorithm})`;
      }
      const given = decodeHex(prefixed ? prefixed[2] : value);
      if (!given || given.length !== digestBytes) return `${name} is not a ${label} signature: expected ${algorithm}= and ${digestBytes * 2} hex digits`;
      const expected = createHmac(algorithm, secret).update(rawBody).digest();
      return matchesAny(expected, [given]) ? null : `${name} does not match the body: check the secret and that the body reaches alyx unchanged`;
    },
  };
}

const stripe: Scheme = {
  problem: ({ header }) => headerNotConfigurable('stripe', header, 'Stripe-Signature'),
  check({ secret }, rawBody, headers, nowMs) {
    const value = headerValue(headers, 'stripe-signature');
    if (value === undefined) return 'Stripe-Signature is missing';
    let timestamp: string | undefined;
    const signatures: string[] = [];
    const otherSchemes = new Set<string>();
    for (const item of value.split(',')) {
      const eq = item.indexOf('=');
      if (eq <= 0) return 'Stripe-Signature is malformed: expected t=<unix seconds>,v1=<hex>';
      const key = item.slice(0, eq).trim();
      if (key === 't') {
        if (timestamp !== undefined) return 'Stripe-Signature has more than one t=';
        timestamp = item.slice(eq + 1).trim();
      } else if (key === 'v1') signatures.push(item.slice(eq + 1).trim());
      else if (SCHEME_KEY.test(key)) otherSchemes.add(`${key}=`);
    }
    if (timestamp === undefined) return 'Stripe-Signature has no t= timestamp';
    if (!UNIX_SECONDS.test(timestamp)) return 'the Stripe-Signature t= is not a unix time in seconds';
    if (signatures.length === 0) return `Stripe-Signature has no v1= signature${foundSchemes(otherSchemes)}`;
    const skew = timestampProblem('the Stripe-Signature timestamp', timestamp, nowMs);
    if (skew) return skew;
    const given = wellFormed(signatures.map(decodeHex));
    if (given.length === 0) return `Stripe-Signature has no well-formed v1= signature: expected ${SHA256_BYTES * 2} hex digits`;
    const expected = createHmac('sha256', secret).update(`${timestamp}.`).update(rawBody).digest();
    return matchesAny(expected, given)
      ? null
      : 'Stripe-Signature does not match the body: check the endpoint secret (whsec_…) and that the body reaches alyx unchanged';
  },
};

const standardWebhooks: Scheme = {
  idHeader: 'webhook-id',
  problem({ header, secret }) {
    if (!secret.startsWith(WHSEC_PREFIX)) return 'a standard-webhooks secret is whsec_ followed by base64, as the sender shows it';
    if (!decodeBase64(secret.slice(WHSEC_PREFIX.length))?.length) return 'the standard-webhooks secret after whsec_ is not valid base64';
    return headerNotConfigurable('standard-webhooks', header, 'webhook-id, webhook-timestamp and webhook-signature');
  },
  check({ secret }, rawBody, headers, nowMs) {
    const id = headerValue(headers, 'webhook-id');
    if (id === undefined) return 'webhook-id is missing';
    const timestamp = headerValue(headers, 'webhook-timestamp');
    if (timestamp === undefined) return 'webhook-timestamp is missing';
    if (!UNIX_SECONDS.test(timestamp)) return 'webhook-timestamp is not a unix time in seconds';
    const value = headerValue(headers, 'webhook-signature');
    if (value === undefined) return 'webhook-signature is missing';
    const signatures: string[] = [];
    const otherVersions = new Set<string>();
    for (const entry of value.split(' ')) {
      const comma = entry.indexOf(',');
      const version = entry.slice(0, Math.max(comma, 0));
      if (version === 'v1') signatures.push(entry.slice(comma + 1));
      else if (SCHEME_KEY.test(version)) otherVersions.add(`${version},`);
    }
    if (signatures.length === 0) return `webhook-signature has no v1,<base64> signature${foundSchemes(otherVersions)}`;
    const skew = timestampProblem('webhook-timestamp', timestamp, nowMs);
    if (skew) return skew;
    const given = wellFormed(signatures.map(decodeBase64));
    if (given.length === 0) return 'webhook-signature has no well-formed v1 signature: expected base64 of a 32-byte HMAC-SHA256';
    const key = decodeBase64(secret.slice(WHSEC_PREFIX.length)) ?? Buffer.alloc(0);
    const expected = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(rawBody).digest();
    return matchesAny(expected, given)
      ? null
      : 'webhook-signature does not match the body: check the secret (whsec_…) and that the body reaches alyx unchanged';
  },
};

const SCHEMES: Readonly<Record<WebhookVerificationType, Scheme>> = {
  'hmac-sha256': hmacScheme('sha256', 'X-Hub-Signature-256'),
  'hmac-sha1': hmacScheme('sha1', 'X-Hub-Signature'),
  stripe,
  'standard-webhooks': standardWebhooks,
};

/** Checks a manifest's verification block at discovery; returns what is wrong with it, or null. */
export function verificationProblem(verification: WebhookVerification): string | null {
  const scheme = schemeFor(verification.type);
  if (!scheme) return `verification type ${JSON.stringify(verification.type)} is not one of ${Object.keys(SCHEMES).join(', ')}`;
  if (typeof verification.secret !== 'string' || verification.secret.trim() === '') {
    return 'verification secret is empty (if it is ${VAR}, is that variable set?)';
  }
  return scheme.problem(verification);
}

/** Verifies one delivery's signature over its raw body bytes; `skipInvalid` is the caller's to apply. */
export function verifyWebhook(verification: WebhookVerification, rawBody: Buffer, headers: IncomingHttpHeaders, nowMs: number = Date.now()): VerifyResult {
  const scheme = schemeFor(verification.type);
  const webhookId = scheme?.idHeader === undefined ? null : (headerValue(headers, scheme.idHeader) ?? null);
  // Discovery should have refused the block already; an empty secret would sign for anyone, so it never verifies.
  const problem = verificationProblem(verification);
  const reason = !scheme || problem ? `the hook's verification is misconfigured: ${problem}` : scheme.check(verification, rawBody, headers, nowMs);
  return reason === null ? { ok: true, webhookId } : { ok: false, reason, webhookId };
}

function schemeFor(type: unknown): Scheme | undefined {
  return typeof type === 'string' && Object.hasOwn(SCHEMES, type) ? SCHEMES[type as WebhookVerificationType] : undefined;
}

/** A header by case-insensitive name; repeated headers are joined as node joins them; empty counts as missing. */
function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const raw = headers[name.toLowerCase()];
  const value = Array.isArray(raw) ? raw.join(', ') : raw;
  return value === undefined || value.trim() === '' ? undefined : value;
}

function headerNotConfigurable(type: string, header: string | undefined, reads: string): string | null {
  return header === undefined ? null : `verification header applies only to hmac-sha256 and hmac-sha1; ${type} reads ${reads}`;
}

function foundSchemes(schemes: ReadonlySet<string>): string {
  return schemes.size === 0 ? '' : ` (found ${[...schemes].join(' ')})`;
}

function timestampProblem(label: string, seconds: string, nowMs: number): string | null {
  const offMs = nowMs - Number(seconds) * 1000;
  if (Math.abs(offMs) <= TIMESTAMP_TOLERANCE_MS) return null;
  const off = Math.ceil(Math.abs(offMs) / 1000);
  const limit = `(the limit is ${TIMESTAMP_TOLERANCE_MS / 1000} s)`;
  return offMs > 0 ? `${label} is ${off} s old ${limit}` : `${label} is ${off} s in the future ${limit}; check the clocks`;
}

/** Hex to bytes, or null: Buffer.from would silently stop at the first bad digit. */
function decodeHex(text: string): Buffer | null {
  return /^(?:[0-9a-fA-F]{2})+$/.test(text) ? Buffer.from(text, 'hex') : null;
}

/** Standard base64 (padding optional) to bytes, or null: Buffer.from would skip bad characters and accept base64url. */
function decodeBase64(text: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return null;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64').replace(/=+$/, '') === text.replace(/=+$/, '') ? bytes : null;
}

function wellFormed(signatures: readonly (Buffer | null)[]): Buffer[] {
  return signatures.filter((signature): signature is Buffer => signature?.length === SHA256_BYTES);
}

/**
 * Constant-time comparison against every candidate. Lengths are checked before
 * timingSafeEqual only on decoded signatures, whose expected length is public.
 */
function matchesAny(expected: Buffer, candidates: readonly Buffer[]): boolean {
  let matched = false;
  for (const candidate of candidates) {
    if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) matched = true;
  }
  return matched;
}
