import type { KV, KvEntry } from 'nats';
import type { DeadLetter, InvocationRecord, NewInvocation, ScheduleKey } from './store';

/** An invocation as kept in its bucket: the record, who runs it, and which queuing of it is current. */
export interface Stored extends InvocationRecord {
  readonly owner: string | null;
  /** Raised when a dead letter is queued again: a delivery of an earlier queuing is then stale. */
  readonly generation: number;
}

export interface StoredLetter extends DeadLetter {
  /** The invocation as it died: what a retry queues again, and what reads of it answer meanwhile. */
  readonly record: Stored;
}

export interface StoredScheduleRun extends ScheduleKey {
  readonly lastFireAt: number | null;
  readonly lastRunAt: number | null;
  readonly lastRequestId: string | null;
}

/** How many times a schedule's entry is read and written again when other replicas change it meanwhile. */
const MAX_RUN_WRITES = 10;

/**
 * alyx's key-value buckets in JetStream: invocation records, dead letters and schedule runs.
 * Writes that depend on what was read are compare-and-set on the entry's revision; a write that
 * lost to another replica answers false rather than overwriting it.
 */
export class JetStreamBuckets {
  readonly #invocations: KV;
  readonly #deadLetters: KV;
  readonly #schedules: KV;

  constructor(buckets: { invocations: KV; deadLetters: KV; schedules: KV }) {
    this.#invocations = buckets.invocations;
    this.#deadLetters = buckets.deadLetters;
    this.#schedules = buckets.schedules;
  }

  async readRecord(requestId: string): Promise<{ record: Stored; revision: number } | null> {
    const entry = await this.#invocations.get(encodeKey(requestId));
    const record = parse<Stored>(entry);
    return record && entry ? { record, revision: entry.revision } : null;
  }

  /** False when the invocation already has a record. */
  async createRecord(record: Stored): Promise<boolean> {
    return casWrite(() => this.#invocations.create(encodeKey(record.requestId), JSON.stringify(record)));
  }

  /** False when the record changed since `revision` was read. */
  async updateRecord(record: Stored, revision: number): Promise<boolean> {
    return casWrite(() => this.#invocations.update(encodeKey(record.requestId), JSON.stringify(record), revision));
  }

  async putRecord(record: Stored): Promise<void> {
    await this.#invocations.put(encodeKey(record.requestId), JSON.stringify(record));
  }

  async putLetter(letter: StoredLetter): Promise<void> {
    await this.#deadLetters.put(letterKey(letter.requestId, letter.id), JSON.stringify(letter));
  }

  async letters(): Promise<StoredLetter[]> {
    return this.#values<StoredLetter>(this.#deadLetters);
  }

  /** The dead letter of an invocation, if it has one. */
  async letterOf(requestId: string): Promise<StoredLetter | null> {
    const [letter] = await this.#values<StoredLetter>(this.#deadLetters, `${encodeKey(requestId)}.*`);
    return letter ?? null;
  }

  async letterById(id: string): Promise<StoredLetter | null> {
    if (!/^[0-9a-f]{1,64}$/.test(id)) return null;
    const [letter] = await this.#values<StoredLetter>(this.#deadLetters, `*.${id}`);
    return letter ?? null;
  }

  async deleteLetter(letter: StoredLetter): Promise<void> {
    await this.#deadLetters.delete(letterKey(letter.requestId, letter.id));
  }

  async run(key: ScheduleKey): Promise<StoredScheduleRun | null> {
    return parse<StoredScheduleRun>(await this.#schedules.get(scheduleKey(key)));
  }

  async runs(): Promise<StoredScheduleRun[]> {
    return this.#values<StoredScheduleRun>(this.#schedules);
  }

  /** Records a schedule seen for the first time; an existing entry is left as it is. */
  async registerRun(run: StoredScheduleRun): Promise<void> {
    await casWrite(() => this.#schedules.create(scheduleKey(run), JSON.stringify(run)));
  }

  /** Changes a schedule's entry by compare-and-set, reading it again when another replica came first; `change` answers null to leave it. */
  async changeRun(key: ScheduleKey, change: (current: StoredScheduleRun) => StoredScheduleRun | null): Promise<void> {
    for (let writes = 0; writes < MAX_RUN_WRITES; writes++) {
      const entry = await this.#schedules.get(scheduleKey(key));
      const current = parse<StoredScheduleRun>(entry);
      const next = change(current ?? { ...key, lastFireAt: null, lastRunAt: null, lastRequestId: null });
      if (!next) return;
      const text = JSON.stringify(next);
      const written = current && entry ? await casWrite(() => this.#schedules.update(scheduleKey(key), text, entry.revision)) : await casWrite(() => this.#schedules.create(scheduleKey(key), text));
      if (written) return;
    }
  }

  async #values<T>(kv: KV, filter?: string): Promise<T[]> {
    const keys: string[] = [];
    for await (const key of await kv.keys(filter)) keys.push(key);
    const values: T[] = [];
    for (const key of keys) {
      const value = parse<T>(await kv.get(key));
      if (value) values.push(value);
    }
    return values;
  }
}

export function newRecord(invocation: NewInvocation, now: number, generation: number): Stored {
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

export function publicRecord(stored: Stored): InvocationRecord {
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

function letterKey(requestId: string, id: string): string {
  return `${encodeKey(requestId)}.${id}`;
}

function scheduleKey(key: ScheduleKey): string {
  return encodeKey(`${key.function}\0${key.name}`);
}

/** Runs a compare-and-set write; false when it lost (the entry exists, or changed since it was read). */
async function casWrite(write: () => Promise<unknown>): Promise<boolean> {
  try {
    await write();
    return true;
  } catch (error) {
    const err = error as { api_error?: { err_code?: number }; message?: string };
    if (err.api_error?.err_code === 10071 || /wrong last sequence/i.test(err.message ?? '')) return false;
    throw error;
  }
}
