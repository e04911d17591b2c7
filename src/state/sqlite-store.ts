import os from 'node:os';
import type BetterSqlite3 from 'better-sqlite3';
import { randomHex } from '../random-hex';
import type { AttemptOutcome, DeadLetter, InvocationRecord, InvocationStatus, NewInvocation, ScheduleKey, ScheduleRun, StateStore } from './store';
import { openDatabase } from './sqlite-open';
import { prepareStatements, type Statements } from './sqlite-statements';

export interface SqliteStoreOptions {
  /** Absolute path of the database file; its folder is created when missing. */
  readonly file: string;
  readonly resultTtlMs: number;
}

/** How often a process that claims work says it is alive, and when the others take it for dead. */
const HEARTBEAT_MS = 2000;
const LEASE_MS = 15_000;
const PURGE_EVERY_MS = 60_000;
const PROCESS_STARTED_AT = Date.now() - Math.round(process.uptime() * 1000);

interface InvocationRow {
  request_id: string;
  function: string;
  input: string;
  trigger: string;
  callback_url: string | null;
  auth: string | null;
  call_depth: number;
  status: InvocationStatus;
  attempts: number;
  failures: number;
  created_at: number;
  run_at: number;
  started_at: number | null;
  finished_at: number | null;
  envelope: string | null;
}

/**
 * The embedded store: one SQLite file in WAL mode. Several alyx processes may share the file:
 * each write is one transaction, a claim is one UPDATE, and a process that stops saying it is
 * alive (or whose pid is gone, on this host) has its claims put back in the queue.
 */
export class SqliteStore implements StateStore {
  readonly location: string;
  readonly #db: BetterSqlite3.Database;
  readonly #resultTtlMs: number;
  readonly #owner = `${os.hostname()}:${process.pid}:${randomHex(4)}`;
  #registered = false;
  #heartbeat: NodeJS.Timeout | null = null;
  #lastPurge = 0;
  readonly #sql: Statements;

  constructor(options: SqliteStoreOptions) {
    this.location = options.file;
    this.#resultTtlMs = options.resultTtlMs;
    this.#db = openDatabase(options.file);
    this.#sql = prepareStatements(this.#db);
  }

  /** A file at hand is always there to use, or fails each call with its own error. */
  unavailable(): string | null {
    return null;
  }

  async enqueue(invocation: NewInvocation, now = Date.now()): Promise<{ record: InvocationRecord; created: boolean }> {
    const created = this.#insert(invocation, now);
    return { record: toRecord(this.#sql.get.get(invocation.requestId) as InvocationRow), created };
  }

  async get(requestId: string, now = Date.now()): Promise<InvocationRecord | null> {
    const row = this.#sql.get.get(requestId) as InvocationRow | undefined;
    if (!row || this.#expired(row, now)) return null;
    return toRecord(row);
  }

  async claim(now = Date.now()): Promise<InvocationRecord | null> {
    this.#register();
    const row = this.#sql.claim.get({ owner: this.#owner, now }) as InvocationRow | undefined;
    return row ? toRecord(row) : null;
  }

  async nextDueAt(): Promise<number | null> {
    return (this.#sql.nextDue.get() as { next: number | null }).next;
  }

  async finish(requestId: string, outcome: AttemptOutcome, now = Date.now()): Promise<boolean> {
    const owned = { request_id: requestId, owner: this.#owner, now };
    // One UPDATE each, and a transaction only where a dead letter is written beside it.
    if (outcome.status === 'queued') return this.#sql.requeue.run({ ...owned, run_at: outcome.runAt }).changes === 1;
    const envelope = JSON.stringify(outcome.envelope);
    if (outcome.status === 'failed') return this.#sql.failAttempt.run({ ...owned, envelope, run_at: outcome.runAt }).changes === 1;
    if (outcome.status === 'succeeded') return this.#sql.succeed.run({ ...owned, envelope }).changes === 1;
    return this.#db
      .transaction((): boolean => {
        const row = this.#sql.die.get({ ...owned, envelope }) as { function: string; attempts: number } | undefined;
        if (!row) return false;
        this.#sql.addDeadLetter.run({
          id: randomHex(8),
          request_id: requestId,
          function: row.function,
          attempts: row.attempts,
          error: JSON.stringify(outcome.envelope.error ?? null),
          failed_at: now,
        });
        return true;
      })
      .immediate();
  }

  async takeCallbacks(limit: number): Promise<InvocationRecord[]> {
    return (this.#sql.takeCallbacks.all({ limit }) as InvocationRow[]).map(toRecord);
  }

  async listDeadLetters(): Promise<DeadLetter[]> {
    return (this.#sql.deadLetters.all() as Array<Record<string, unknown>>).map((row) => ({
      id: row.id as string,
      requestId: row.request_id as string,
      function: row.function as string,
      attempts: row.attempts as number,
      error: JSON.parse(row.error as string) as unknown,
      failedAt: row.failed_at as number,
    }));
  }

  async retryDeadLetter(id: string, now = Date.now()): Promise<InvocationRecord | null> {
    return this.#db
      .transaction((): InvocationRecord | null => {
        const letter = this.#sql.deadLetter.get(id) as { request_id: string } | undefined;
        if (!letter) return null;
        this.#sql.dropDeadLetter.run(id);
        const row = this.#sql.requeueDead.get({ request_id: letter.request_id, now }) as InvocationRow | undefined;
        return row ? toRecord(row) : null;
      })
      .immediate();
  }

  async dropDeadLetter(id: string): Promise<boolean> {
    return this.#sql.dropDeadLetter.run(id).changes === 1;
  }

  async fireSchedule(key: ScheduleKey, fireAt: number, invocation: NewInvocation, now = Date.now()): Promise<boolean> {
    return this.#db
      .transaction((): boolean => {
        const run = this.#sql.scheduleRun.get(key) as { last_fire_at: number | null } | undefined;
        if (run && run.last_fire_at !== null && run.last_fire_at >= fireAt) return false;
        this.#insert(invocation, now);
        this.#sql.recordFire.run({ ...key, last_fire_at: fireAt, last_request_id: invocation.requestId, now });
        return true;
      })
      .immediate();
  }

  async registerSchedule(key: ScheduleKey, lastFireAt: number | null): Promise<void> {
    this.#sql.registerSchedule.run({ ...key, last_fire_at: lastFireAt });
  }

  async runScheduleNow(key: ScheduleKey, invocation: NewInvocation, now = Date.now()): Promise<InvocationRecord> {
    return this.#db
      .transaction((): InvocationRecord => {
        this.#insert(invocation, now);
        this.#sql.recordManualRun.run({ ...key, last_request_id: invocation.requestId, now });
        return toRecord(this.#sql.get.get(invocation.requestId) as InvocationRow);
      })
      .immediate();
  }

  async scheduleRuns(): Promise<ScheduleRun[]> {
    return (this.#sql.scheduleRuns.all() as Array<Record<string, unknown>>).map((row) => ({
      function: row.function as string,
      name: row.name as string,
      lastFireAt: row.last_fire_at as number | null,
      lastRunAt: row.last_run_at as number | null,
      lastStatus: (row.status as InvocationStatus | null) ?? null,
    }));
  }

  async purgeExpired(now = Date.now()): Promise<number> {
    this.#lastPurge = now;
    return this.#sql.purge.run({ before: now - this.#resultTtlMs }).changes;
  }

  async close(): Promise<void> {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
    if (!this.#db.open) return;
    if (this.#registered) {
      this.#db
        .transaction(() => {
          this.#sql.releaseOwned.run({ owner: this.#owner });
          this.#sql.removeOwner.run(this.#owner);
        })
        .immediate();
    }
    this.#db.close();
  }

  /** A process that claims work says so, and from then on keeps saying it is alive. */
  /** Liveness is about the real clock, whatever time a caller passes for what is due. */
  #register(): void {
    if (this.#registered) return;
    this.#registered = true;
    const now = Date.now();
    this.#sql.beat.run({ id: this.#owner, pid: process.pid, host: os.hostname(), now });
    this.#reclaim(now);
    this.#heartbeat = setInterval(() => this.#beat(), HEARTBEAT_MS);
    this.#heartbeat.unref();
  }

  #beat(): void {
    if (!this.#db.open) return;
    const now = Date.now();
    try {
      this.#sql.beat.run({ id: this.#owner, pid: process.pid, host: os.hostname(), now });
      this.#reclaim(now);
      if (now - this.#lastPurge >= PURGE_EVERY_MS) void this.purgeExpired(now);
    } catch {
      // A busy file or a full disk: the next beat tries again, well within the lease.
    }
  }

  /** Puts back in the queue what processes that died were running: after their lease, or at once when their pid is gone on this host. */
  #reclaim(now: number): void {
    this.#db
      .transaction(() => {
        const host = os.hostname();
        for (const owner of this.#sql.owners.all() as Array<{ id: string; pid: number; host: string; heartbeat_at: number }>) {
          if (owner.id === this.#owner) continue;
          // On this host a gone pid is a dead process; so is one with this process's own pid that went
          // silent before this process started (a restart in a new container reuses pids).
          const predecessor = owner.pid === process.pid && owner.heartbeat_at < PROCESS_STARTED_AT;
          const gone = owner.heartbeat_at < now - LEASE_MS || (owner.host === host && (predecessor || !isAlive(owner.pid)));
          if (gone) this.#sql.removeOwner.run(owner.id);
        }
        this.#sql.releaseOrphaned.run();
      })
      .immediate();
  }

  #insert(invocation: NewInvocation, now: number): boolean {
    return (
      this.#sql.insert.run({
        request_id: invocation.requestId,
        function: invocation.function,
        input: JSON.stringify(invocation.input),
        trigger: JSON.stringify(invocation.trigger),
        callback_url: invocation.callbackUrl,
        auth: invocation.auth === undefined || invocation.auth === null ? null : JSON.stringify(invocation.auth),
        call_depth: invocation.callDepth ?? 0,
        now,
      }).changes === 1
    );
  }

  /** A finished result past state.result_ttl reads as gone even before the purge removes it; dead letters stay. */
  #expired(row: InvocationRow, now: number): boolean {
    if (row.finished_at === null || row.finished_at > now - this.#resultTtlMs) return false;
    return !(row.status === 'dead' && this.#sql.deadLetterOf.get(row.request_id));
  }
}

function toRecord(row: InvocationRow): InvocationRecord {
  return {
    requestId: row.request_id,
    function: row.function,
    input: JSON.parse(row.input) as Record<string, unknown>,
    trigger: JSON.parse(row.trigger) as InvocationRecord['trigger'],
    callbackUrl: row.callback_url,
    auth: row.auth === null ? null : (JSON.parse(row.auth) as unknown),
    callDepth: row.call_depth,
    status: row.status,
    attempts: row.attempts,
    failures: row.failures,
    createdAt: row.created_at,
    runAt: row.run_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    envelope: row.envelope === null ? null : (JSON.parse(row.envelope) as Record<string, unknown>),
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
