import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StateUnavailableError } from '../../src/errors';
import { SqliteStore } from '../../src/state/sqlite-store';
import type { NewInvocation } from '../../src/state/store';
import { makeProject, removeProject } from '../helpers/project';

/** The embedded store against a real SQLite file in a temporary folder. */
describe('SqliteStore', () => {
  let dir: string;
  const opened: SqliteStore[] = [];
  const open = (file = path.join(dir, 'state', 'state.db'), resultTtlMs = 60_000): SqliteStore => {
    const store = new SqliteStore({ file, resultTtlMs });
    opened.push(store);
    return store;
  };
  const invocation = (requestId: string, extra: Partial<NewInvocation> = {}): NewInvocation => ({
    requestId,
    function: 'hello',
    input: { n: requestId },
    trigger: { type: 'async' },
    callbackUrl: null,
    ...extra,
  });

  beforeEach(() => {
    dir = makeProject();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
    removeProject(dir);
  });

  it('creates its folder and file, in WAL mode, and keeps what was queued across a reopen', async () => {
    const file = path.join(dir, 'deep', 'er', 'state.db');
    const first = open(file);
    const { record, created } = await first.enqueue(invocation('r1'), 1000);
    expect(created).toBe(true);
    expect(record).toMatchObject({ requestId: 'r1', status: 'queued', attempts: 0, failures: 0, createdAt: 1000, runAt: 1000, input: { n: 'r1' } });
    await first.close();
    expect(fs.existsSync(`${file}-wal`) || fs.existsSync(file)).toBe(true);
    const again = open(file);
    expect(await again.get('r1')).toMatchObject({ requestId: 'r1', status: 'queued' });
  });

  it("what a dead process ran goes back to the queue at once, in its old place; a predecessor with this pid counts as dead", async () => {
    const file = path.join(dir, 'shared.db');
    const store = open(file);
    await store.enqueue(invocation('first'), 100);
    await store.enqueue(invocation('second'), 200);
    // Written as a process that ran before this one (pids are reused across container restarts) would have left it.
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const Database = require('better-sqlite3') as typeof import('better-sqlite3');
    const raw = new Database(file);
    raw.prepare(`INSERT INTO owners (id, pid, host, heartbeat_at) VALUES ('old', ?, ?, ?)`).run(process.pid, os.hostname(), Date.now() - Math.round(process.uptime() * 1000) - 1000);
    raw.prepare(`UPDATE invocations SET status = 'running', owner = 'old', attempts = 1 WHERE request_id = 'first'`).run();
    raw.close();
    const claimed = await store.claim(1000);
    expect(claimed).toMatchObject({ requestId: 'first', attempts: 2, runAt: 100 });
  });

  it('a corrupt file is a clear error that names the path and what to do', () => {
    const file = path.join(dir, 'corrupt.db');
    fs.writeFileSync(file, 'this is not a database, it is a text file that is long enough to have a header'.repeat(100));
    expect(() => open(file)).toThrow(StateUnavailableError);
    expect(() => open(file)).toThrow(new RegExp(`state.url ${file} cannot be used .*not an SQLite database or is damaged: move it away`));
  });

  it('a folder that cannot be created is a clear error that names the path', () => {
    const blocker = path.join(dir, 'file-not-folder');
    fs.writeFileSync(blocker, '');
    const file = path.join(blocker, 'state.db');
    expect(() => open(file)).toThrow(`state.url ${file}: its folder cannot be created (a file stands where a folder should be): choose a writable path for state.url.`);
  });
});
