import type { ConsumerConfig, JsMsg, JetStreamClient, JetStreamManager, KV, NatsConnection, StreamConfig } from 'nats';
import { StateUnavailableError } from '../errors';
import type { NatsTarget } from './nats-url';

/** What alyx keeps in JetStream (SPEC §14). The names are fixed: one alyx project per NATS account. */
export const WORK_STREAM = 'ALYX_WORK';
export const WORK_SUBJECT = 'alyx.work';
export const WORKER = 'alyx-worker';
export const CALLBACK_STREAM = 'ALYX_CALLBACKS';
export const CALLBACK_SUBJECT = 'alyx.callbacks';
export const CALLBACK_SENDER = 'alyx-callbacks';
const INVOCATIONS_BUCKET = 'alyx_invocations';
const DEAD_LETTERS_BUCKET = 'alyx_dead_letters';
const SCHEDULES_BUCKET = 'alyx_schedules';

/**
 * How long JetStream remembers a message id: a fire time published again within it (by another
 * replica, or by one that restarted) is dropped as a duplicate.
 */
const DUPLICATE_WINDOW_MS = 10 * 60_000;
/** The ack deadline of a consumer created by a tool that runs nothing. */
const DEFAULT_ACK_WAIT_MS = 5 * 60_000;
/** How long to wait for the first connection: an unreachable NATS at start is an error, not a wait. */
const CONNECT_TIMEOUT_MS = 5000;

export interface JetStreamSetupOptions {
  readonly target: NatsTarget;
  readonly resultTtlMs: number;
  /**
   * How long a delivered invocation may go without an answer or a keep-alive before it is
   * delivered again. Absent (a command line tool that runs nothing): an existing consumer keeps its own.
   */
  readonly ackWaitMs?: number;
  /** Told what was created or found, once per stream and bucket. */
  readonly log: (message: string) => void;
}

export interface JetStreamHandles {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly invocations: KV;
  readonly deadLetters: KV;
  readonly schedules: KV;
}

/** Connects, and creates (or finds, and brings up to date) the streams, consumers and buckets alyx uses. */
export async function setUpJetStream(options: JetStreamSetupOptions): Promise<JetStreamHandles> {
  const { target } = options;
  // Loaded here: a project on the embedded store never pays for the NATS client at start.
  const nats = require('nats') as typeof import('nats'); // eslint-disable-line @typescript-eslint/no-var-requires
  let nc: NatsConnection;
  try {
    nc = await nats.connect({
      servers: target.servers,
      user: target.user,
      pass: target.pass,
      name: 'alyx',
      timeout: CONNECT_TIMEOUT_MS,
      // Once connected, a lost connection is retried for as long as alyx runs: /api/ready says 503 meanwhile.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
    });
  } catch (error) {
    throw new StateUnavailableError(`state.url ${target.location}: cannot connect to NATS: ${reason(error)}: start nats-server (2.9 or newer, with -js) there, or fix state.url.`);
  }
  try {
    const jsm = await nc.jetstreamManager();
    const js = nc.jetstream();
    const replicas = target.replicas;
    await ensureStream(jsm, options, {
      name: WORK_STREAM,
      subjects: [WORK_SUBJECT],
      retention: 'workqueue' as StreamConfig['retention'],
      storage: 'file' as StreamConfig['storage'],
      num_replicas: replicas,
      duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    });
    await ensureConsumer(jsm, options, WORK_STREAM, {
      durable_name: WORKER,
      ack_policy: 'explicit' as ConsumerConfig['ack_policy'],
      ack_wait: nanos(options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS),
      max_deliver: -1,
      max_ack_pending: 10_000,
    }, options.ackWaitMs !== undefined);
    await ensureStream(jsm, options, {
      name: CALLBACK_STREAM,
      subjects: [CALLBACK_SUBJECT],
      retention: 'workqueue' as StreamConfig['retention'],
      storage: 'file' as StreamConfig['storage'],
      num_replicas: replicas,
    });
    await ensureConsumer(jsm, options, CALLBACK_STREAM, { durable_name: CALLBACK_SENDER, ack_policy: 'explicit' as ConsumerConfig['ack_policy'], ack_wait: nanos(30_000) }, false);
    const bucket = async (name: string, ttlMs: number): Promise<KV> => {
      const existed = await streamExists(jsm, `KV_${name}`);
      const kv = await js.views.kv(name, { history: 1, replicas, ttl: ttlMs, storage: 'file' as StreamConfig['storage'] });
      if (existed) await keepTtl(jsm, options, `KV_${name}`, ttlMs);
      options.log(`state: key-value bucket ${name} ${existed ? 'found' : 'created'}${ttlMs ? ` (entries kept ${Math.round(ttlMs / 1000)}s)` : ''}`);
      return kv;
    };
    return {
      nc,
      js,
      invocations: await bucket(INVOCATIONS_BUCKET, options.resultTtlMs),
      deadLetters: await bucket(DEAD_LETTERS_BUCKET, 0),
      schedules: await bucket(SCHEDULES_BUCKET, 0),
    };
  } catch (error) {
    await nc.close().catch(() => undefined);
    throw new StateUnavailableError(`state.url ${target.location}: NATS answered, but JetStream cannot be used: ${reason(error)}: start nats-server with JetStream enabled (-js), 2.9 or newer.`);
  }
}

async function streamExists(jsm: JetStreamManager, name: string): Promise<boolean> {
  try {
    await jsm.streams.info(name);
    return true;
  } catch (error) {
    if ((error as Error).message === 'stream not found') return false;
    throw error;
  }
}

async function ensureStream(jsm: JetStreamManager, options: JetStreamSetupOptions, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  const existed = await streamExists(jsm, config.name);
  if (!existed) await jsm.streams.add(config);
  options.log(`state: stream ${config.name} ${existed ? 'found' : 'created'}`);
}

/** Creates a durable consumer, or brings an existing one's ack deadline to what this alyx needs. */
async function ensureConsumer(
  jsm: JetStreamManager,
  options: JetStreamSetupOptions,
  stream: string,
  config: Partial<ConsumerConfig> & { durable_name: string },
  updateAckWait: boolean,
): Promise<void> {
  let existing: ConsumerConfig | null = null;
  try {
    existing = (await jsm.consumers.info(stream, config.durable_name)).config;
  } catch (error) {
    if (!/consumer not found/i.test((error as Error).message)) throw error;
  }
  if (!existing) {
    await jsm.consumers.add(stream, config);
    options.log(`state: consumer ${config.durable_name} created (ack deadline ${Math.round((config.ack_wait ?? 0) / 1e9)}s)`);
    return;
  }
  if (updateAckWait && config.ack_wait !== undefined && existing.ack_wait !== config.ack_wait) {
    await jsm.consumers.update(stream, config.durable_name, { ack_wait: config.ack_wait });
    options.log(`state: consumer ${config.durable_name} found; ack deadline changed to ${Math.round(config.ack_wait / 1e9)}s`);
    return;
  }
  options.log(`state: consumer ${config.durable_name} found`);
}

/** A bucket made with another state.result_ttl keeps its entries as long as this alyx's configuration says. */
async function keepTtl(jsm: JetStreamManager, options: JetStreamSetupOptions, stream: string, ttlMs: number): Promise<void> {
  const { config } = await jsm.streams.info(stream);
  if (config.max_age === nanos(ttlMs)) return;
  // JetStream refuses a duplicate window longer than the age limit.
  await jsm.streams.update(stream, { ...config, max_age: nanos(ttlMs), duplicate_window: Math.min(config.duplicate_window, nanos(ttlMs)) });
  options.log(`state: ${stream} now keeps entries ${Math.round(ttlMs / 1000)}s (state.result_ttl)`);
}

function nanos(ms: number): number {
  return ms * 1_000_000;
}

function reason(error: unknown): string {
  const err = error as { code?: string; message?: string };
  if (err.code === 'CONNECTION_REFUSED') return 'connection refused';
  if (err.code === 'TIMEOUT') return 'no answer within 5 s';
  return err.message ?? String(error);
}

/** The next message for a durable consumer if one is there now, without waiting; null when none. */
export async function pullNow(js: JetStreamClient, stream: string, consumer: string): Promise<JsMsg | null> {
  try {
    return await js.pull(stream, consumer);
  } catch (error) {
    // 404: no message; 408: the request was overtaken by another (both mean "none now").
    if (['404', '408'].includes((error as { code?: string }).code ?? '')) return null;
    throw error;
  }
}

/** Tells `onChange` why the connection cannot be used (lost, closed), and null when it is back. */
export function watchConnection(nc: NatsConnection, onChange: (down: string | null) => void): void {
  void nc.closed().then(() => onChange('the connection to NATS was closed'));
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') onChange('the connection to NATS was lost');
      else if (status.type === 'reconnect') onChange(null);
    }
  })();
}
