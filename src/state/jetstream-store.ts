import os from 'node:os';
import type { JsMsg, KV, KvEntry } from 'nats';
import { StateUnavailableError } from '../errors';
import { randomHex } from '../random-hex';
import { CALLBACK_SENDER, CALLBACK_STREAM, CALLBACK_SUBJECT, setUpJetStream, WORK_STREAM, WORK_SUBJECT, WORKER, type JetStreamHandles } from './jetstream-setup';
import type { NatsTarget } from './nats-url';
import type { AttemptOutcome, DeadLetter, InvocationRecord, NewInvocation, ScheduleKey, ScheduleRun, StateStore } from './store';

export interface JetStreamStoreOptions {
  readonly target: NatsTarget;
  readonly resultTtlMs: number;
  /** The ack deadline of a delivered invocation: longer than any function's timeout; absent for a tool that runs nothing. */
  readonly ackWaitMs?: number;
  readonly log?: (message: string) => void;
}

/**
 * How often an idle replica asks for work queued elsewhere (its own queuing wakes it at once).
 * A claim asks without waiting: a pull request left waiting can be handed a message just as it
 * expires or as the connection closes, and that message then waits out its whole ack deadline.
 */
const POLL_MS = 250;
/** At most this many not-yet-due messages are put back in one claim before it answers "none". */
const MAX_NOT_DUE_PER_CLAIM = 32;
/** How often a running invocation's delivery is kept alive, at most. */
const KEEPALIVE_MS = 5000;

/** An invocation as kept in the bucket: the record, who runs it, and which queuing of it is current. */
interface Stored extends InvocationRecord {
  readonly owner: string | null;
  /** Raised when a dead letter is queued again: a delivery of an earlier queuing is then stale. */
  readonly generation: number;
}

interface StoredLetter extends DeadLetter {
  readonly record: Stored;
}

interface StoredScheduleRun {
  readonly function: string;
  readonly name: string;
  readonly lastFireAt: number | null;
  readonly lastRunAt: number | null;
  readonly lastRequestId: string | null;
}

/**
 * The shared store for several replicas (SPEC §14), on NATS JetStream:
 * - each queuing of an invocation is a message in a work-queue stream, read by one durable pull
 *   consumer that every replica shares: a message is delivered to one replica at a time, kept
 *   alive while it runs, acknowledged when its attempt is recorded, and delivered again when a
 *   replica dies (its ack deadline passes). Not yet due (a retry's backoff): put back with a delay.
 * - each invocation's record is a key-value entry that expires after state.result_ttl; changes
 *   to it are compare-and-set on its revision, so a replica whose claim was taken over cannot
 *   overwrite the new owner's result.
 * - a schedule's fire time is queued under a message id that follows from the fire time: when
 *   several replicas publish it, JetStream's deduplication keeps one.
 */
export class JetStreamStore implements StateStore {
  readonly location: string;
  readonly #handles: JetStreamHandles;
  readonly #resultTtlMs: number;
  readonly #ackWaitMs: number;
  readonly #owner = `${os.hostname()}:${process.pid}:${randomHex(4)}`;
  readonly #held = new Map<string, { msg: JsMsg; keepAlive: NodeJS.Timeout }>();
  #down: string | null = null;
  #closing = false;

  private constructor(location: string, handles: JetStreamHandles, options: JetStreamStoreOptions) {
    this.location = location;
    this.#handles = handles;
    this.#resultTtlMs = options.resultTtlMs;
    this.#ackWaitMs = options.ackWaitMs ?? KEEPALIVE_MS * 3;
    void this.#watchConnection();
  }

  /** Connects and sets up what alyx keeps in JetStream. Throws StateUnavailableError with the URL and the reason. */
  static async connect(options: JetStreamStoreOptions): Promise<JetStreamStore> {
    const handles = await setUpJetStream({ ...options, log: options.log ?? (() => undefined) });
    return new JetStreamStore(options.target.location, handles, options);
  }

  unavailable(): string | null {
    return this.#down;
  }

  async enqueue(invocation: NewInvocation, now = Date.now()): Promise<{ record: InvocationRecord; created: boolean }> {
    this.#assertUp();
    const existing = await this.#read(invocation.requestId);
    if (existing) return { record: publicRecord(existing.record), created: false };
    const record = newRecord(invocation, now, 0);
    const created = await this.#queue(record);
    if (created) return { record: publicRecord(record), created: true };
    return { record: publicRecord((await this.#read(invocation.requestId))?.record ?? record), created: false };
  }

  async get(requestId: string, now = Date.now()): Promise<InvocationRecord | null> {
    this.#assertUp();
    const found = await this.#read(requestId);
    if (found && !this.#expired(found.record, now)) return publicRecord(found.record);
    // A dead invocation stays readable while its dead letter does.
    const letter = await this.#letterOf(requestId);
    return letter ? publicRecord(letter.record) : null;
  }

  async claim(now = Date.now()): Promise<InvocationRecord | null> {
    this.#assertUp();
    for (let notDue = 0; notDue < MAX_NOT_DUE_PER_CLAIM; ) {
      const msg = await this.#pullWork();
      if (!msg) return null;
      if (this.#closing) {
        msg.nak();
        return null;
      }
      const taken = await this.#take(msg, now);
      if (taken === 'not_due') notDue++;
      else if (taken) return taken;
    }
    return null;
  }

  /** Work queued by another replica is not announced here: ask again shortly. */
  async nextDueAt(): Promise<number | null> {
    return Date.now() + POLL_MS;
  }

  async finish(requestId: string, outcome: AttemptOutcome, now = Date.now()): Promise<boolean> {
    const held = this.#held.get(requestId);
    if (!held) return false;
    this.#held.delete(requestId);
    clearInterval(held.keepAlive);
    const found = await this.#read(requestId);
    // Taken over by another replica (this one was silent past the ack deadline): its result stands.
    if (!found || found.record.owner !== this.#owner || found.record.status !== 'running') return false;
    const { record, revision } = found;
    const released = { ...record, owner: null };
    if (outcome.status === 'queued' || outcome.status === 'failed') {
      const next: Stored =
        outcome.status === 'queued'
          ? { ...released, status: 'queued', runAt: outcome.runAt }
          : { ...released, status: 'failed', failures: record.failures + 1, envelope: outcome.envelope, runAt: outcome.runAt };
      if (!(await this.#update(requestId, next, revision))) return false;
      held.msg.nak(Math.max(0, outcome.runAt - now));
      return true;
    }
    const ended: Stored = {
      ...released,
      status: outcome.status,
      envelope: outcome.envelope,
      finishedAt: now,
      failures: outcome.status === 'dead' ? record.failures + 1 : record.failures,
    };
    if (outcome.status === 'dead') {
      // Written before the record: a replica dying in between leaves a dead letter, never a dead invocation without one.
      const letter: StoredLetter = {
        id: randomHex(8),
        requestId,
        function: record.function,
        attempts: record.attempts,
        error: outcome.envelope.error ?? null,
        failedAt: now,
        record: ended,
      };
      await this.#handles.deadLetters.put(letterKey(requestId, letter.id), JSON.stringify(letter));
    }
    if (!(await this.#update(requestId, ended, revision))) return false;
    if (record.callbackUrl) await this.#handles.js.publish(CALLBACK_SUBJECT, JSON.stringify({ requestId }), { msgID: `${requestId}#${record.generation}:${record.attempts}` });
    await held.msg.ackAck();
    return true;
  }

  async takeCallbacks(limit: number): Promise<InvocationRecord[]> {
    this.#assertUp();
    const taken: InvocationRecord[] = [];
    while (taken.length < limit) {
      const msg = await this.#pull(CALLBACK_STREAM, CALLBACK_SENDER);
      if (!msg) break;
      msg.ack();
      const { requestId } = JSON.parse(msg.string()) as { requestId: string };
      const found = await this.#read(requestId);
      if (found) taken.push(publicRecord(found.record));
    }
    return taken;
  }

  async listDeadLetters(): Promise<DeadLetter[]> {
    this.#assertUp();
    const letters: DeadLetter[] = [];
    for (const key of await this.#keys(this.#handles.deadLetters)) {
      const letter = parse<StoredLetter>(await this.#handles.deadLetters.get(key));
      if (letter) letters.push({ id: letter.id, requestId: letter.requestId, function: letter.function, attempts: letter.attempts, error: letter.error, failedAt: letter.failedAt });
    }
    return letters.sort((a, b) => a.failedAt - b.failedAt);
  }

  async retryDeadLetter(id: string, now = Date.now()): Promise<InvocationRecord | null> {
    this.#assertUp();
    const key = await this.#letterKeyById(id);
    if (!key) return null;
    const letter = parse<StoredLetter>(await this.#handles.deadLetters.get(key));
    if (!letter) return null;
    const current = (await this.#read(letter.requestId))?.record ?? letter.record;
    const again: Stored = { ...current, status: 'queued', failures: 0, runAt: now, finishedAt: null, owner: null, generation: current.generation + 1 };
    await this.#handles.invocations.put(recordKey(again.requestId), JSON.stringify(again));
    await this.#publishWork(again);
    await this.#handles.deadLetters.delete(key);
    return publicRecord(again);
  }

  async dropDeadLetter(id: string): Promise<boolean> {
    this.#assertUp();
    const key = await this.#letterKeyById(id);
    if (!key) return false;
    await this.#handles.deadLetters.delete(key);
    return true;
  }

  async fireSchedule(key: ScheduleKey, fireAt: number, invocation: NewInvocation, now = Date.now()): Promise<boolean> {
    this.#assertUp();
    const run = await this.#scheduleRun(key);
    if (run.value?.lastFireAt != null && run.value.lastFireAt >= fireAt) return false;
    // The request id follows from the fire time: every replica publishes the same message id, and one is kept.
    const queued = (await this.#read(invocation.requestId)) === null && (await this.#queue(newRecord(invocation, now, 0)));
    await this.#recordRun(key, (current) =>
      current.lastFireAt !== null && current.lastFireAt >= fireAt ? null : { ...current, lastFireAt: fireAt, lastRunAt: now, lastRequestId: invocation.requestId },
    );
    return queued;
  }

  async registerSchedule(key: ScheduleKey, lastFireAt: number | null): Promise<void> {
    this.#assertUp();
    try {
      await this.#handles.schedules.create(scheduleKey(key), JSON.stringify({ ...key, lastFireAt, lastRunAt: null, lastRequestId: null } satisfies StoredScheduleRun));
    } catch (error) {
      if (!isWrongSequence(error)) throw error;
    }
  }

  async runScheduleNow(key: ScheduleKey, invocation: NewInvocation, now = Date.now()): Promise<InvocationRecord> {
    const { record } = await this.enqueue(invocation, now);
    await this.#recordRun(key, (current) => ({ ...current, lastRunAt: now, lastRequestId: invocation.requestId }));
    return record;
  }

  async scheduleRuns(): Promise<ScheduleRun[]> {
    this.#assertUp();
    const runs: ScheduleRun[] = [];
    for (const key of await this.#keys(this.#handles.schedules)) {
      const run = parse<StoredScheduleRun>(await this.#handles.schedules.get(key));
      if (!run) continue;
      const last = run.lastRequestId ? await this.#read(run.lastRequestId) : null;
      runs.push({ function: run.function, name: run.name, lastFireAt: run.lastFireAt, lastRunAt: run.lastRunAt, lastStatus: last?.record.status ?? null });
    }
    return runs.sort((a, b) => a.function.localeCompare(b.function) || a.name.localeCompare(b.name));
  }

  /** The bucket's own age limit removes results after state.result_ttl: nothing to do here. */
  async purgeExpired(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    // What this replica still holds is delivered again at once, to whichever replica asks next.
    for (const { msg, keepAlive } of this.#held.values()) {
      clearInterval(keepAlive);
      msg.nak();
    }
    this.#held.clear();
    const { nc } = this.#handles;
    if (nc.isClosed()) return;
    await nc.flush().catch(() => undefined);
    await nc.close();
  }

  /** Publishes a queuing of the record and creates its entry; false when another queuing of it came first. */
  async #queue(record: Stored): Promise<boolean> {
    if (!(await this.#publishWork(record))) return false;
    try {
      await this.#handles.invocations.create(recordKey(record.requestId), JSON.stringify(record));
      return true;
    } catch (error) {
      if (isWrongSequence(error)) return false;
      throw error;
    }
  }

  /** False when JetStream already had this queuing (a duplicate message id within its window). */
  async #publishWork(record: Stored): Promise<boolean> {
    const ack = await this.#handles.js.publish(WORK_SUBJECT, JSON.stringify(record), { msgID: `${record.requestId}#${record.generation}` });
    return !ack.duplicate;
  }

  /** Marks a delivered invocation running for this replica; null when the delivery is stale or finished, 'not_due' when put back. */
  async #take(msg: JsMsg, now: number): Promise<InvocationRecord | null | 'not_due'> {
    let sent: Stored;
    try {
      sent = JSON.parse(msg.string()) as Stored;
    } catch {
      msg.term();
      return null;
    }
    const found = await this.#read(sent.requestId);
    const current = found?.record ?? sent;
    if (current.generation > sent.generation || current.status === 'succeeded' || current.status === 'dead') {
      msg.ack();
      return null;
    }
    if (current.runAt > now) {
      msg.nak(current.runAt - now);
      return 'not_due';
    }
    const claimed: Stored = { ...current, status: 'running', attempts: current.attempts + 1, startedAt: now, owner: this.#owner };
    const written = found ? await this.#update(sent.requestId, claimed, found.revision) : await this.#create(claimed);
    if (!written) {
      // The entry changed under this replica: look at the delivery again shortly.
      msg.nak(100);
      return null;
    }
    const keepAlive = setInterval(() => msg.working(), Math.min(KEEPALIVE_MS, Math.max(1000, Math.floor(this.#ackWaitMs / 3))));
    keepAlive.unref();
    this.#held.set(claimed.requestId, { msg, keepAlive });
    return publicRecord(claimed);
  }

  #pullWork(): Promise<JsMsg | null> {
    return this.#pull(WORK_STREAM, WORKER);
  }

  /** The next message for a durable consumer if one is there now, without waiting; null when none. */
  async #pull(stream: string, consumer: string): Promise<JsMsg | null> {
    try {
      return await this.#handles.js.pull(stream, consumer);
    } catch (error) {
      // 404: no message; 408: the request was overtaken by another (both mean "none now").
      if (['404', '408'].includes((error as { code?: string }).code ?? '')) return null;
      throw error;
    }
  }

  async #read(requestId: string): Promise<{ record: Stored; revision: number } | null> {
    const entry = await this.#handles.invocations.get(recordKey(requestId));
    const record = parse<Stored>(entry);
    return record && entry ? { record, revision: entry.revision } : null;
  }

  async #update(requestId: string, record: Stored, revision: number): Promise<boolean> {
    try {
      await this.#handles.invocations.update(recordKey(requestId), JSON.stringify(record), revision);
      return true;
    } catch (error) {
      if (isWrongSequence(error)) return false;
      throw error;
    }
  }

  async #create(record: Stored): Promise<boolean> {
    try {
      await this.#handles.invocations.create(recordKey(record.requestId), JSON.stringify(record));
      return true;
    } catch (error) {
      if (isWrongSequence(error)) return false;
      throw error;
    }
  }

  async #scheduleRun(key: ScheduleKey): Promise<{ value: StoredScheduleRun | null; revision: number }> {
    const entry = await this.#handles.schedules.get(scheduleKey(key));
    const value = parse<StoredScheduleRun>(entry);
    return { value, revision: value && entry ? entry.revision : 0 };
  }

  /** Changes a schedule's run record by compare-and-set; `change` answers null to leave it. Bounded retries. */
  async #recordRun(key: ScheduleKey, change: (current: StoredScheduleRun) => StoredScheduleRun | null): Promise<void> {
    for (let tries = 0; tries < 10; tries++) {
      const { value, revision } = await this.#scheduleRun(key);
      const next = change(value ?? { ...key, lastFireAt: null, lastRunAt: null, lastRequestId: null });
      if (!next) return;
      try {
        if (revision === 0) await this.#handles.schedules.create(scheduleKey(key), JSON.stringify(next));
        else await this.#handles.schedules.update(scheduleKey(key), JSON.stringify(next), revision);
        return;
      } catch (error) {
        if (!isWrongSequence(error)) throw error;
      }
    }
  }

  async #letterOf(requestId: string): Promise<StoredLetter | null> {
    for (const key of await this.#keys(this.#handles.deadLetters, `${encodeKey(requestId)}.*`)) {
      const letter = parse<StoredLetter>(await this.#handles.deadLetters.get(key));
      if (letter) return letter;
    }
    return null;
  }

  async #letterKeyById(id: string): Promise<string | null> {
    if (!/^[0-9a-f]{1,64}$/.test(id)) return null;
    const [key] = await this.#keys(this.#handles.deadLetters, `*.${id}`);
    return key ?? null;
  }

  async #keys(kv: KV, filter?: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const key of await kv.keys(filter)) keys.push(key);
    return keys;
  }

  #expired(record: Stored, now: number): boolean {
    return record.finishedAt !== null && record.finishedAt <= now - this.#resultTtlMs;
  }

  #assertUp(): void {
    if (this.#closing) throw new StateUnavailableError(`state.url ${this.location}: the connection to NATS is closed.`);
    if (this.#down) throw new StateUnavailableError(`state.url ${this.location}: ${this.#down}; alyx is reconnecting: try again shortly.`);
  }

  async #watchConnection(): Promise<void> {
    const { nc } = this.#handles;
    void nc.closed().then(() => {
      if (!this.#closing) this.#down = 'the connection to NATS was closed';
    });
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') this.#down = 'the connection to NATS was lost';
      else if (status.type === 'reconnect') this.#down = null;
    }
  }
}

function newRecord(invocation: NewInvocation, now: number, generation: number): Stored {
  return {
    requestId: invocation.requestId,
    function: invocation.function,
    input: invocation.input,
    trigger: invocation.trigger,
    callbackUrl: invocation.callbackUrl,
    auth: invocation.auth ?? null,
    callDepth: invocation.callDepth ?? 0,
    status: 'queued',
    attempts: 0,
    failures: 0,
    createdAt: now,
    runAt: now,
    startedAt: null,
    finishedAt: null,
    envelope: null,
    owner: null,
    generation,
  };
}

function publicRecord(stored: Stored): InvocationRecord {
  const { owner: _owner, generation: _generation, ...record } = stored; // eslint-disable-line @typescript-eslint/no-unused-vars
  return record;
}

function parse<T>(entry: KvEntry | null): T | null {
  if (!entry || entry.operation !== 'PUT') return null;
  return JSON.parse(entry.string()) as T;
}

/** Keys are base64url: any request id or schedule name is a valid key, and dots stay separators of our own. */
function encodeKey(text: string): string {
  return Buffer.from(text).toString('base64url');
}

function recordKey(requestId: string): string {
  return encodeKey(requestId);
}

function letterKey(requestId: string, id: string): string {
  return `${encodeKey(requestId)}.${id}`;
}

function scheduleKey(key: ScheduleKey): string {
  return encodeKey(`${key.function}\0${key.name}`);
}

/** A compare-and-set that lost: the entry exists, or changed since it was read. */
function isWrongSequence(error: unknown): boolean {
  const err = error as { api_error?: { err_code?: number }; message?: string };
  return err.api_error?.err_code === 10071 || /wrong last sequence/i.test(err.message ?? '');
}
