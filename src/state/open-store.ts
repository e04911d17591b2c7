import type { AlyxConfig } from '../config/resolve';
import { StateUnavailableError } from '../errors';
import { SqliteStore } from './sqlite-store';
import type { StateStore } from './store';

/** The store `state.url` names: a file path is the embedded SQLite store. */
export function openStateStore(config: AlyxConfig): StateStore {
  const { url, resultTtlMs } = config.state;
  if (/^nats:\/\//i.test(url)) {
    throw new StateUnavailableError(`state.url ${redacted(url)}: NATS JetStream is not supported by this version of alyx: use a file path for the embedded store.`);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new StateUnavailableError(`state.url ${redacted(url)}: unknown scheme: use a file path (embedded SQLite) or nats://host:4222.`);
  }
  return new SqliteStore({ file: url, resultTtlMs });
}

/** A URL as it may be logged: without its password. */
export function redacted(url: string): string {
  return url.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@');
}
