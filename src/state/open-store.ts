import type { AlyxConfig } from '../config/resolve';
import { StateUnavailableError } from '../errors';
import { JetStreamStore } from './jetstream-store';
import { isNatsUrl, parseNatsUrl, redactedNatsUrl } from './nats-url';
import { SqliteStore } from './sqlite-store';
import type { StateStore } from './store';

export interface OpenStoreOptions {
  /** The ack deadline of a delivered invocation on JetStream: longer than any function's timeout. Absent: a tool that runs nothing, which leaves the deadline as it is. */
  readonly ackWaitMs?: number;
  /** Told what was created or found in JetStream. */
  readonly log?: (message: string) => void;
}

/** Whether `state.url` names a shared store that is connected to, not a file. */
export function isSharedStore(config: AlyxConfig): boolean {
  return isNatsUrl(config.state.url);
}

/** The embedded SQLite store `state.url` names. Throws StateUnavailableError, also for a URL (see openStateStore). */
export function openFileStore(config: AlyxConfig): StateStore {
  const { url, resultTtlMs } = config.state;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new StateUnavailableError(`state.url ${redactedNatsUrl(url)}: unknown scheme: use a file path (embedded SQLite) or nats://host:4222.`);
  }
  return new SqliteStore({ file: url, resultTtlMs });
}

/** The store `state.url` names: a file path is the embedded SQLite store, nats:// is JetStream. */
export async function openStateStore(config: AlyxConfig, options: OpenStoreOptions = {}): Promise<StateStore> {
  if (!isSharedStore(config)) return openFileStore(config);
  return JetStreamStore.connect({
    target: parseNatsUrl(config.state.url),
    resultTtlMs: config.state.resultTtlMs,
    ackWaitMs: options.ackWaitMs,
    log: options.log,
  });
}
