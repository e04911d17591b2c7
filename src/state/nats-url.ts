import { StateUnavailableError } from '../errors';

/** Where a JetStream store connects, as `state.url: nats://[user:pass@]host:port[,nats://…][?replicas=N]` says. */
export interface NatsTarget {
  /** host:port of each server given; the client finds the rest of a cluster by itself. */
  readonly servers: string[];
  readonly user?: string;
  readonly pass?: string;
  /** How many copies JetStream keeps of alyx's streams and buckets: 1, or up to 5 in a cluster. */
  readonly replicas: number;
  /** The URL as it may be logged: without a password. */
  readonly location: string;
}

export function isNatsUrl(url: string): boolean {
  return /^nats:\/\//i.test(url);
}

/** Reads a `nats://` state URL; a malformed one is a StateUnavailableError that says what to write. */
export function parseNatsUrl(url: string): NatsTarget {
  const servers: string[] = [];
  let user: string | undefined;
  let pass: string | undefined;
  let replicas = 1;
  for (const part of url.split(',')) {
    let parsed: URL;
    try {
      parsed = new URL(part.trim());
    } catch {
      throw malformed(url, `"${redactedNatsUrl(part.trim())}" is not a URL`);
    }
    if (parsed.protocol !== 'nats:' || !parsed.hostname) throw malformed(url, `"${redactedNatsUrl(part.trim())}" is not nats://host:port`);
    servers.push(`${parsed.hostname}:${parsed.port || '4222'}`);
    if (parsed.username) {
      user = decodeURIComponent(parsed.username);
      pass = decodeURIComponent(parsed.password);
    }
    const wanted = parsed.searchParams.get('replicas');
    if (wanted !== null) {
      replicas = Number(wanted);
      if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) throw malformed(url, `replicas=${wanted} is not a whole number from 1 to 5`);
    }
  }
  return { servers, user, pass, replicas, location: redactedNatsUrl(url) };
}

/** A URL as it may be logged: without its password. */
export function redactedNatsUrl(url: string): string {
  return url.replace(/\/\/([^/@:,]*):[^/@,]*@/g, '//$1:***@');
}

function malformed(url: string, why: string): StateUnavailableError {
  return new StateUnavailableError(`state.url ${redactedNatsUrl(url)}: ${why}: write nats://[user:pass@]host:port, several separated by commas, optionally ?replicas=N.`);
}
