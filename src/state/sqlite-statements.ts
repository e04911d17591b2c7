import type BetterSqlite3 from 'better-sqlite3';

/** Every statement of the embedded store, prepared once per connection (typed by hand: declarations cannot name an inferred driver type). */
export type Statements = Record<keyof typeof SQL, BetterSqlite3.Statement>;

const due = `status IN ('queued', 'failed')`;
const SQL = {
  insert: `INSERT OR IGNORE INTO invocations (request_id, function, input, trigger, callback_url, auth, call_depth, status, attempts, failures, created_at, run_at)
     VALUES (@request_id, @function, @input, @trigger, @callback_url, @auth, @call_depth, 'queued', 0, 0, @now, @now)`,
  get: `SELECT * FROM invocations WHERE request_id = ?`,
  claim: `UPDATE invocations SET status = 'running', owner = @owner, attempts = attempts + 1, started_at = @now
     WHERE request_id = (SELECT request_id FROM invocations WHERE ${due} AND run_at <= @now ORDER BY run_at LIMIT 1)
     RETURNING *`,
  nextDue: `SELECT MIN(run_at) AS next FROM invocations WHERE ${due}`,
  requeue: `UPDATE invocations SET status = 'queued', owner = NULL, run_at = @run_at
     WHERE request_id = @request_id AND owner = @owner AND status = 'running'`,
  failAttempt: `UPDATE invocations SET status = 'failed', owner = NULL, failures = failures + 1, envelope = @envelope, run_at = @run_at
     WHERE request_id = @request_id AND owner = @owner AND status = 'running'`,
  succeed: `UPDATE invocations SET status = 'succeeded', owner = NULL, envelope = @envelope, finished_at = @now, callback_pending = (callback_url IS NOT NULL)
     WHERE request_id = @request_id AND owner = @owner AND status = 'running'`,
  die: `UPDATE invocations SET status = 'dead', owner = NULL, envelope = @envelope, finished_at = @now, failures = failures + 1,
       callback_pending = (callback_url IS NOT NULL)
     WHERE request_id = @request_id AND owner = @owner AND status = 'running'
     RETURNING function, attempts`,
  takeCallbacks: `UPDATE invocations SET callback_pending = 0
     WHERE request_id IN (SELECT request_id FROM invocations WHERE callback_pending = 1 LIMIT @limit)
     RETURNING *`,
  addDeadLetter: `INSERT OR REPLACE INTO dead_letters (id, request_id, function, attempts, error, failed_at)
     VALUES (@id, @request_id, @function, @attempts, @error, @failed_at)`,
  deadLetters: `SELECT * FROM dead_letters ORDER BY failed_at, id`,
  deadLetter: `SELECT * FROM dead_letters WHERE id = ?`,
  deadLetterOf: `SELECT id FROM dead_letters WHERE request_id = ?`,
  dropDeadLetter: `DELETE FROM dead_letters WHERE id = ?`,
  requeueDead: `UPDATE invocations SET status = 'queued', failures = 0, run_at = @now, finished_at = NULL, callback_pending = 0
     WHERE request_id = @request_id AND status = 'dead'
     RETURNING *`,
  scheduleRun: `SELECT last_fire_at FROM schedule_runs WHERE function = @function AND name = @name`,
  recordFire: `INSERT INTO schedule_runs (function, name, last_fire_at, last_request_id, last_run_at)
     VALUES (@function, @name, @last_fire_at, @last_request_id, @now)
     ON CONFLICT (function, name) DO UPDATE SET last_fire_at = excluded.last_fire_at, last_request_id = excluded.last_request_id, last_run_at = excluded.last_run_at`,
  registerSchedule: `INSERT INTO schedule_runs (function, name, last_fire_at) VALUES (@function, @name, @last_fire_at)
     ON CONFLICT (function, name) DO UPDATE SET last_fire_at = excluded.last_fire_at WHERE schedule_runs.last_fire_at IS NULL`,
  recordManualRun: `INSERT INTO schedule_runs (function, name, last_fire_at, last_request_id, last_run_at)
     VALUES (@function, @name, NULL, @last_request_id, @now)
     ON CONFLICT (function, name) DO UPDATE SET last_request_id = excluded.last_request_id, last_run_at = excluded.last_run_at`,
  scheduleRuns: `SELECT s.function, s.name, s.last_fire_at, s.last_run_at, i.status
     FROM schedule_runs s LEFT JOIN invocations i ON i.request_id = s.last_request_id
     ORDER BY s.function, s.name`,
  purge: `DELETE FROM invocations WHERE status IN ('succeeded', 'dead') AND finished_at < @before
     AND request_id NOT IN (SELECT request_id FROM dead_letters)`,
  owners: `SELECT id, pid, host, heartbeat_at FROM owners`,
  beat: `INSERT INTO owners (id, pid, host, heartbeat_at) VALUES (@id, @pid, @host, @now)
     ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`,
  removeOwner: `DELETE FROM owners WHERE id = ?`,
  releaseOwned: `UPDATE invocations SET status = 'queued', owner = NULL WHERE status = 'running' AND owner = @owner`,
  releaseOrphaned: `UPDATE invocations SET status = 'queued', owner = NULL
     WHERE status = 'running' AND (owner IS NULL OR owner NOT IN (SELECT id FROM owners))`,
};

export function prepareStatements(db: BetterSqlite3.Database): Statements {
  return Object.fromEntries(Object.entries(SQL).map(([name, sql]) => [name, db.prepare(sql)])) as Statements;
}
