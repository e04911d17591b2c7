import fs from 'node:fs';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { StateUnavailableError } from '../errors';
import { SCHEMA_SQL, SCHEMA_VERSION } from './sqlite-schema';

/** How long a write waits for another process's write to finish. */
const BUSY_TIMEOUT_MS = 5000;

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

export function openDatabase(file: string): BetterSqlite3.Database {
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
