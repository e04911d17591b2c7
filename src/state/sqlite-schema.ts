/** The embedded store's tables. Bump SCHEMA_VERSION with every change, and migrate from the one before. */
export const SCHEMA_VERSION = 1;

export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS invocations (
  request_id TEXT PRIMARY KEY,
  function TEXT NOT NULL,
  input TEXT NOT NULL,
  trigger TEXT NOT NULL,
  callback_url TEXT,
  auth TEXT,
  call_depth INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  failures INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  run_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  owner TEXT,
  envelope TEXT,
  callback_pending INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS invocations_due ON invocations (run_at) WHERE status IN ('queued', 'failed');
CREATE INDEX IF NOT EXISTS invocations_running ON invocations (owner) WHERE status = 'running';
CREATE INDEX IF NOT EXISTS invocations_finished ON invocations (finished_at) WHERE status IN ('succeeded', 'dead');
CREATE INDEX IF NOT EXISTS invocations_callbacks ON invocations (request_id) WHERE callback_pending = 1;
CREATE TABLE IF NOT EXISTS dead_letters (
  id TEXT PRIMARY KEY,
  request_id TEXT NOT NULL UNIQUE,
  function TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  error TEXT NOT NULL,
  failed_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS schedule_runs (
  function TEXT NOT NULL,
  name TEXT NOT NULL,
  last_fire_at INTEGER,
  last_request_id TEXT,
  last_run_at INTEGER,
  PRIMARY KEY (function, name)
);
CREATE TABLE IF NOT EXISTS owners (
  id TEXT PRIMARY KEY,
  pid INTEGER NOT NULL,
  host TEXT NOT NULL,
  heartbeat_at INTEGER NOT NULL
);
`;
