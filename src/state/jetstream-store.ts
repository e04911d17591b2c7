import os from 'node:os';
import type { JsMsg } from 'nats';
import { StateUnavailableError } from '../errors';
import { randomHex } from '../random-hex';
import { JetStreamBuckets, newRecord, publicRecord, type Stored, type StoredLetter } from './jetstream-buckets';
import { CALLBACK_SENDER, CALLBACK_STREAM, CALLBACK_SUBJECT, pullNow, setUpJetStream, watchConnection, WORK_STREAM, WORK_SUBJECT, WORKER, type JetStreamHandles } from './jetstream-setup';
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
  readonly #kv: JetStreamBuckets;
  readonly #resultTtlMs: number;
  readonly #ackWaitMs: number;
  readonly #owner = `${os.hostname()}:${process.pid}:${randomHex(4)}`;
  readonly #held = new Map<string, { msg: JsMsg; keepAlive: NodeJS.Timeout }>();
  #down: string | null = null;
  #closing = false;

  private constructor(location: string, handles: JetStreamHandles, options: JetStreamStoreOptions) {
    this.location = location;
    this.#handles = handles;
    this.#kv = new JetStreamBuckets(handles);
    this.#resultTtlMs = options.resultTtlMs;
    this.#ackWaitMs = options.ackWaitMs ?? KEEPALIVE_MS * 3;
    watchConnection(handles.nc, (down) => {
      if (!this.#closing) this.#down = down;
    });
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
    const existing = await this.#kv.readRecord(invocation.requestId);
    if (existing) return { record: publicRecord(existing.record), created: false };
    const record = newRecord(invocation, now, 0);
    const created = await this.#queue(record);
    if (created) return { record: publicRecord(record), created: true };
    return { record: publicRecord((await this.#kv.readRecord(invocation.requestId))?.record ?? record), created: false };
  }

  async get(requestId: string, now = Date.now()): Promise<InvocationRecord | null> {
    this.#assertUp();
    const found = await this.#kv.readRecord(requestId);
    if (found && !this.#expired(found.record, now)) return publicRecord(found.record);
    // A dead invocation stays readable while its dead letter does.
    const letter = await this.#kv.letterOf(requestId);
    return letter ? publicRecord(letter.record) : null;
  }

  async claim(now = Date.now()): Promise<InvocationRecord | null> {
    this.#assertUp();
    for (let notDue = 0; notDue < MAX_NOT_DUE_PER_CLAIM; ) {
      const msg = await pullNow(this.#handles.js, WORK_STREAM, WORKER);
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
    const found = await this.#kv.readRecord(requestId);
    // Taken over by another replica (this one was silent past the ack deadline): its result stands.
    if (!found || found.record.owner !== this.#owner || found.record.status !== 'running') return false;
    const { record, revision } = found;
    const released = { ...record, owner: null };
    if (outcome.status === 'queued' || outcome.status === 'failed') {
      const next: Stored =
        outcome.status === 'queued'
          ? { ...released, status: 'queued', runAt: outcome.runAt }
          : { ...released, status: 'failed', failures: record.failures + 1, envelope: outcome.envelope, runAt: outcome.runAt };
      if (!(await this.#kv.updateRecord(next, revision))) return false;
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
      const letter: StoredLetter = { id: randomHex(8), requestId, function: record.function, attempts: record.attempts, error: outcome.envelope.error ?? null, failedAt: now, record: ended };
      await this.#kv.putLetter(letter);
    }
    if (!(await this.#kv.updateRecord(ended, revision))) return false;
    if (record.callbackUrl) await this.#handles.js.publish(CALLBACK_SUBJECT, JSON.stringify({ requestId }), { msgID: `${requestId}#${record.generation}:${record.attempts}` });
    await held.msg.ackAck();
    return true;
  }

  async takeCallbacks(limit: number): Promise<InvocationRecord[]> {
    this.#assertUp();
    const taken: InvocationRecord[] = [];
    while (taken.length < limit) {
      const msg = await pullNow(this.#handles.js, CALLBACK_STREAM, CALLBACK_SENDER);
      if (!msg) break;
      msg.ack();
      const { requestId } = JSON.parse(msg.string()) as { requestId: string };
      const found = await this.#kv.readRecord(requestId);
      if (found) taken.push(publicRecord(found.record));
    }
    return taken;
  }

  async listDeadLetters(): Promise<DeadLetter[]> {
    this.#assertUp();
    const letters = await this.#kv.letters();
    return letters.map(({ record: _record, ...letter }) => letter).sort((a, b) => a.failedAt - b.failedAt); // eslint-disable-line @typescript-eslint/no-unused-vars
  }

  async retryDeadLetter(id: string, now = Date.now()): Promise<InvocationRecord | null> {
    this.#assertUp();
    const letter = await this.#kv.letterById(id);
    if (!letter) return null;
    const current = (await this.#kv.readRecord(letter.requestId))?.record ?? letter.record;
    const again: Stored = { ...current, status: 'queued', failures: 0, runAt: now, finishedAt: null, owner: null, generation: current.generation + 1 };
    await this.#kv.putRecord(again);
    await this.#publishWork(again);
    await this.#kv.deleteLetter(letter);
    return publicRecord(again);
  }

  async dropDeadLetter(id: string): Promise<boolean> {
    this.#assertUp();
    const letter = await this.#kv.letterById(id);
    if (!letter) return false;
    await this.#kv.deleteLetter(letter);
    return true;
  }

  async fireSchedule(key: ScheduleKey, fireAt: number, invocation: NewInvocation, now = Date.now()): Promise<boolean> {
    this.#assertUp();
    const run = await this.#kv.run(key);
    if (run?.lastFireAt != null && run.lastFireAt >= fireAt) return false;
    // The request id follows from the fire time: every replica publishes the same message id, and one is kept.
    const queued = (await this.#kv.readRecord(invocation.requestId)) === null && (await this.#queue(newRecord(invocation, now, 0)));
    await this.#kv.changeRun(key, (current) =>
      current.lastFireAt !== null && current.lastFireAt >= fireAt ? null : { ...current, lastFireAt: fireAt, lastRunAt: now, lastRequestId: invocation.requestId },
    );
    return queued;
  }

  async registerSchedule(key: ScheduleKey, lastFireAt: number | null): Promise<void> {
    this.#assertUp();
    await this.#kv.registerRun({ ...key, lastFireAt, lastRunAt: null, lastRequestId: null });
  }

  async runScheduleNow(key: ScheduleKey, invocation: NewInvocation, now = Date.now()): Promise<InvocationRecord> {
    const { record } = await this.enqueue(invocation, now);
    await this.#kv.changeRun(key, (current) => ({ ...current, lastRunAt: now, lastRequestId: invocation.requestId }));
    return record;
  }

  async scheduleRuns(): Promise<ScheduleRun[]> {
    this.#assertUp();
    const runs: ScheduleRun[] = [];
    for (const run of await this.#kv.runs()) {
      const last = run.lastRequestId ? await this.#kv.readRecord(run.lastRequestId) : null;
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
    return (await this.#publishWork(record)) && (await this.#kv.createRecord(record));
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
    const found = await this.#kv.readRecord(sent.requestId);
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
    const written = found ? await this.#kv.updateRecord(claimed, found.revision) : await this.#kv.createRecord(claimed);
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

  #expired(record: Stored, now: number): boolean {
    return record.finishedAt !== null && record.finishedAt <= now - this.#resultTtlMs;
  }

  #assertUp(): void {
    if (this.#closing) throw new StateUnavailableError(`state.url ${this.location}: the connection to NATS is closed.`);
    if (this.#down) throw new StateUnavailableError(`state.url ${this.location}: ${this.#down}; alyx is reconnecting: try again shortly.`);
  }
}
