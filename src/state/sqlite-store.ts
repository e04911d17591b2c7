import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { StateUnavailableError } from '../errors';
import { randomHex } from '../random-hex';
import type { AttemptOutcome, DeadLetter, InvocationRecord, InvocationStatus, NewInvocation, ScheduleKey, ScheduleRun, StateStore } from './store';
import { SCHEMA_SQL, SCHEMA_VERSION } from './sqlite-schema';

export interface SqliteStoreOptions {
  /** Absolute path of the database file; its folder is created when missing. */
  readonly file: string;
  readonly resultTtlMs: number;
}

/** How often a process that claims work says it is alive, and when the others take it for dead. */
const HEARTBEAT_MS = 2000;
const LEASE_MS = 15_000;
/** How long a write waits for another process's write to finish. */
const BUSY_TIMEOUT_MS = 5000;
const PURGE_EVERY_MS = 60_000;

interface InvocationRow {
  request_id: string;
  function: string;
  input: string;
  trigger: string;
  callback_url: string | null;
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
  readonly #sql: ReturnType<typeof prepare>;

  constructor(options: SqliteStoreOptions) {
    this.location = options.file;
    this.#resultTtlMs = options.resultTtlMs;
    this.#db = openDatabase(options.file);
    this.#sql = prepare(this.#db);
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
    this.#register(now);
    const row = this.#sql.claim.get({ owner: this.#owner, now }) as InvocationRow | undefined;
    return row ? toRecord(row) : null;
  }

  async nextDueAt(): Promise<number | null> {
    return (this.#sql.nextDue.get() as { next: number | null }).next;
  }

  async finish(requestId: string, outcome: AttemptOutcome, now = Date.now()): Promise<boolean> {
    return this.#db
      .transaction((): boolean => {
        const owned = { request_id: requestId, owner: this.#owner, now };
        if (outcome.status === 'queued') return this.#sql.requeue.run({ ...owned, run_at: outcome.runAt }).changes === 1;
        const envelope = JSON.stringify(outcome.envelope);
        if (outcome.status === 'failed') return this.#sql.failAttempt.run({ ...owned, envelope, run_at: outcome.runAt }).changes === 1;
        const row = this.#sql.end.get({ ...owned, envelope, status: outcome.status }) as InvocationRow | undefined;
        if (!row) return false;
        if (outcome.status === 'dead') {
          this.#sql.addDeadLetter.run({
            id: randomHex(8),
            request_id: requestId,
            function: row.function,
            attempts: row.attempts,
            error: JSON.stringify(outcome.envelope.error ?? null),
            failed_at: now,
          });
        }
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
          this.#sql.releaseOwned.run({ owner: this.#owner, now: Date.now() });
          this.#sql.removeOwner.run(this.#owner);
        })
        .immediate();
    }
    this.#db.close();
  }

  /** A process that claims work says so, and from then on keeps saying it is alive. */
  #register(now: number): void {
    if (this.#registered) return;
    this.#registered = true;
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
          const gone = owner.heartbeat_at < now - LEASE_MS || (owner.host === host && !isAlive(owner.pid));
          if (gone) this.#sql.removeOwner.run(owner.id);
        }
        this.#sql.releaseOrphaned.run({ now });
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

/** Loaded on first use: only commands and servers that keep background state need the native driver. */
function loadDriver(file: string): typeof BetterSqlite3 {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return require('better-sqlite3') as typeof BetterSqlite3;
  } catch (error) {
    throw new StateUnavailableError(
      `state.url ${file}: background work needs the SQLite driver better-sqlite3, which cannot be loaded (${firstLine(error)}): ` +
        'it is an optional dependency that installs a prebuilt binary or compiles one; with a C compiler on the PATH, run "npm rebuild better-sqlite3" with the node that runs alyx.',
    );
  }
}

function openDatabase(file: string): BetterSqlite3.Database {
  const Database = loadDriver(file);
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'EEXIST' || code === 'ENOTDIR' ? 'a file stands where a folder should be' : code;
    throw new StateUnavailableError(`state.url ${file}: its folder cannot be created (${why}): choose a writable path for state.url.`);
  }
  let db: BetterSqlite3.Database | null = null;
  try {
    db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
    db.pragma('journal_mode = WAL');
    // A commit is in the WAL before it returns: it survives alyx being killed; an fsync per commit would guard against power loss too.
    db.pragma('synchronous = NORMAL');
    migrate(db, file);
    return db;
  } catch (error) {
    db?.close();
    if (error instanceof StateUnavailableError) throw error;
    throw new StateUnavailableError(`state.url ${file} cannot be used as alyx's state (${firstLine(error)}): ${remedy(error)}`);
  }
}

function migrate(db: BetterSqlite3.Database, file: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new StateUnavailableError(`state.url ${file} was written by a newer alyx (state version ${version}): upgrade alyx, or point state.url at another file.`);
  }
  if (version === SCHEMA_VERSION) return;
  db.transaction(() => {
    db.exec(SCHEMA_SQL);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

function remedy(error: unknown): string {
  const code = (error as { code?: string }).code ?? '';
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') return 'the file is not an SQLite database or is damaged: move it away (alyx starts a new one) or restore it from a backup.';
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_PERM')) {
    return 'alyx needs to read and write the file and its folder: fix their permissions or choose another state.url.';
  }
  if (code.startsWith('SQLITE_BUSY')) return 'another process holds the file locked: retry, or stop what holds it.';
  return 'fix the file or choose another state.url.';
}

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0];
}

function prepare(db: BetterSqlite3.Database) {
  const due = `status IN ('queued', 'failed')`;
  return {
    insert: db.prepare(
      `INSERT OR IGNORE INTO invocations (request_id, function, input, trigger, callback_url, status, attempts, failures, created_at, run_at)
       VALUES (@request_id, @function, @input, @trigger, @callback_url, 'queued', 0, 0, @now, @now)`,
    ),
    get: db.prepare(`SELECT * FROM invocations WHERE request_id = ?`),
    claim: db.prepare(
      `UPDATE invocations SET status = 'running', owner = @owner, attempts = attempts + 1, started_at = @now
       WHERE request_id = (SELECT request_id FROM invocations WHERE ${due} AND run_at <= @now ORDER BY run_at LIMIT 1)
       RETURNING *`,
    ),
    nextDue: db.prepare(`SELECT MIN(run_at) AS next FROM invocations WHERE ${due}`),
    requeue: db.prepare(
      `UPDATE invocations SET status = 'queued', owner = NULL, run_at = @run_at
       WHERE request_id = @request_id AND owner = @owner AND status = 'running'`,
    ),
    failAttempt: db.prepare(
      `UPDATE invocations SET status = 'failed', owner = NULL, failures = failures + 1, envelope = @envelope, run_at = @run_at
       WHERE request_id = @request_id AND owner = @owner AND status = 'running'`,
    ),
    end: db.prepare(
      `UPDATE invocations SET status = @status, owner = NULL, envelope = @envelope, finished_at = @now,
         failures = failures + (@status = 'dead'), callback_pending = (callback_url IS NOT NULL)
       WHERE request_id = @request_id AND owner = @owner AND status = 'running'
       RETURNING *`,
    ),
    takeCallbacks: db.prepare(
      `UPDATE invocations SET callback_pending = 0
       WHERE request_id IN (SELECT request_id FROM invocations WHERE callback_pending = 1 LIMIT @limit)
       RETURNING *`,
    ),
    addDeadLetter: db.prepare(
      `INSERT OR REPLACE INTO dead_letters (id, request_id, function, attempts, error, failed_at)
       VALUES (@id, @request_id, @function, @attempts, @error, @failed_at)`,
    ),
    deadLetters: db.prepare(`SELECT * FROM dead_letters ORDER BY failed_at, id`),
    deadLetter: db.prepare(`SELECT * FROM dead_letters WHERE id = ?`),
    deadLetterOf: db.prepare(`SELECT id FROM dead_letters WHERE request_id = ?`),
    dropDeadLetter: db.prepare(`DELETE FROM dead_letters WHERE id = ?`),
    requeueDead: db.prepare(
      `UPDATE invocations SET status = 'queued', failures = 0, run_at = @now, finished_at = NULL, callback_pending = 0
       WHERE request_id = @request_id AND status = 'dead'
       RETURNING *`,
    ),
    scheduleRun: db.prepare(`SELECT last_fire_at FROM schedule_runs WHERE function = @function AND name = @name`),
    recordFire: db.prepare(
      `INSERT INTO schedule_runs (function, name, last_fire_at, last_request_id, last_run_at)
       VALUES (@function, @name, @last_fire_at, @last_request_id, @now)
       ON CONFLICT (function, name) DO UPDATE SET last_fire_at = excluded.last_fire_at, last_request_id = excluded.last_request_id, last_run_at = excluded.last_run_at`,
    ),
    registerSchedule: db.prepare(
      `INSERT INTO schedule_runs (function, name, last_fire_at) VALUES (@function, @name, @last_fire_at)
       ON CONFLICT (function, name) DO UPDATE SET last_fire_at = excluded.last_fire_at WHERE schedule_runs.last_fire_at IS NULL`,
    ),
    recordManualRun: db.prepare(
      `INSERT INTO schedule_runs (function, name, last_fire_at, last_request_id, last_run_at)
       VALUES (@function, @name, NULL, @last_request_id, @now)
       ON CONFLICT (function, name) DO UPDATE SET last_request_id = excluded.last_request_id, last_run_at = excluded.last_run_at`,
    ),
    scheduleRuns: db.prepare(
      `SELECT s.function, s.name, s.last_fire_at, s.last_run_at, i.status
       FROM schedule_runs s LEFT JOIN invocations i ON i.request_id = s.last_request_id
       ORDER BY s.function, s.name`,
    ),
    purge: db.prepare(
      `DELETE FROM invocations WHERE status IN ('succeeded', 'dead') AND finished_at < @before
       AND request_id NOT IN (SELECT request_id FROM dead_letters)`,
    ),
    owners: db.prepare(`SELECT id, pid, host, heartbeat_at FROM owners`),
    beat: db.prepare(
      `INSERT INTO owners (id, pid, host, heartbeat_at) VALUES (@id, @pid, @host, @now)
       ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`,
    ),
    removeOwner: db.prepare(`DELETE FROM owners WHERE id = ?`),
    releaseOwned: db.prepare(`UPDATE invocations SET status = 'queued', owner = NULL, run_at = @now WHERE status = 'running' AND owner = @owner`),
    releaseOrphaned: db.prepare(
      `UPDATE invocations SET status = 'queued', owner = NULL, run_at = @now
       WHERE status = 'running' AND (owner IS NULL OR owner NOT IN (SELECT id FROM owners))`,
    ),
  };
}
