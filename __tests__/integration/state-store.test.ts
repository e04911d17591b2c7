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

  it('an existing request id is kept as it is: the id is an idempotency key', async () => {
    const store = open();
    await store.enqueue(invocation('same', { input: { first: true } }));
    const second = await store.enqueue(invocation('same', { input: { second: true } }));
    expect(second.created).toBe(false);
    expect(second.record.input).toEqual({ first: true });
  });

  it('claims due invocations oldest first, each once, counting attempts', async () => {
    const store = open();
    await store.enqueue(invocation('a'), 100);
    await store.enqueue(invocation('b'), 200);
    expect((await store.claim(300))?.requestId).toBe('a');
    const b = await store.claim(300);
    expect(b).toMatchObject({ requestId: 'b', status: 'running', attempts: 1, startedAt: 300 });
    expect(await store.claim(300)).toBeNull();
  });

  it('a failed attempt waits for its retry time; a dead one becomes a dead letter that can be retried or dropped', async () => {
    const store = open();
    await store.enqueue(invocation('r'), 0);
    await store.claim(0);
    const error = { code: 'EXECUTION_ERROR', message: 'boom' };
    expect(await store.finish('r', { status: 'failed', envelope: { success: false, error }, runAt: 5000 }, 10)).toBe(true);
    expect(await store.get('r', 10)).toMatchObject({ status: 'failed', failures: 1, runAt: 5000 });
    expect(await store.claim(4999)).toBeNull();
    expect(await store.nextDueAt()).toBe(5000);
    expect(await store.claim(5000)).toMatchObject({ requestId: 'r', attempts: 2 });
    expect(await store.finish('r', { status: 'dead', envelope: { success: false, error } }, 6000)).toBe(true);
    expect(await store.get('r', 6000)).toMatchObject({ status: 'dead', failures: 2, finishedAt: 6000 });

    const [letter] = await store.listDeadLetters();
    expect(letter).toMatchObject({ requestId: 'r', function: 'hello', attempts: 2, error, failedAt: 6000 });
    expect(letter.id).toMatch(/^[0-9a-f]{16}$/);
    expect(await store.retryDeadLetter(letter.id, 7000)).toMatchObject({ requestId: 'r', status: 'queued', failures: 0, runAt: 7000 });
    expect(await store.listDeadLetters()).toEqual([]);
    expect(await store.retryDeadLetter(letter.id)).toBeNull();
    expect(await store.dropDeadLetter('nope')).toBe(false);
  });

  it('results are gone after result_ttl, dead letters stay until dropped', async () => {
    const store = open(undefined, 1000);
    for (const id of ['ok', 'dead']) {
      await store.enqueue(invocation(id), 0);
      await store.claim(0);
    }
    await store.finish('ok', { status: 'succeeded', envelope: { success: true } }, 100);
    await store.finish('dead', { status: 'dead', envelope: { success: false } }, 100);
    expect(await store.get('ok', 1099)).not.toBeNull();
    expect(await store.get('ok', 1100)).toBeNull();
    expect(await store.purgeExpired(5000)).toBe(1);
    expect(await store.get('dead', 5000)).toMatchObject({ status: 'dead' });
    const [letter] = await store.listDeadLetters();
    await store.dropDeadLetter(letter.id);
    expect(await store.get('dead', 5000)).toBeNull();
  });

  it('two stores on one file never claim the same invocation', async () => {
    const file = path.join(dir, 'shared.db');
    const [one, two] = [open(file), open(file)];
    for (let i = 0; i < 200; i++) await one.enqueue(invocation(`r${i}`), i);
    const claimed: string[] = [];
    for (let round = 0; round < 150; round++) {
      for (const store of [one, two]) {
        const record = await store.claim(10_000);
        if (record) claimed.push(record.requestId);
      }
    }
    expect(claimed).toHaveLength(200);
    expect(new Set(claimed).size).toBe(200);
  });

  it('a store that closes gives what it still runs back to the queue; its result after that is not recorded', async () => {
    const file = path.join(dir, 'shared.db');
    const [one, two] = [open(file), open(file)];
    await one.enqueue(invocation('r'), 0);
    await one.claim(0);
    await one.close();
    expect(await two.get('r')).toMatchObject({ status: 'queued', attempts: 1 });
    expect(await two.claim()).toMatchObject({ requestId: 'r', attempts: 2 });
    expect(await two.finish('unknown', { status: 'succeeded', envelope: {} })).toBe(false);
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

  it('a fire time is queued once, whichever store asks; a schedule seen first starts from its registration', async () => {
    const file = path.join(dir, 'shared.db');
    const [one, two] = [open(file), open(file)];
    const key = { function: 'hello', name: 'tick' };
    await one.registerSchedule(key, 1000);
    expect(await one.fireSchedule(key, 1000, invocation('f1000'))).toBe(false);
    expect(await one.fireSchedule(key, 2000, invocation('f2000'), 2000)).toBe(true);
    expect(await two.fireSchedule(key, 2000, invocation('f2000-again'))).toBe(false);
    expect(await two.get('f2000-again')).toBeNull();
    await two.registerSchedule(key, 0); // already known: left as it is
    expect(await two.scheduleRuns()).toEqual([{ function: 'hello', name: 'tick', lastFireAt: 2000, lastRunAt: 2000, lastStatus: 'queued' }]);
    await two.runScheduleNow(key, invocation('manual'), 2500);
    expect(await one.scheduleRuns()).toEqual([{ function: 'hello', name: 'tick', lastFireAt: 2000, lastRunAt: 2500, lastStatus: 'queued' }]);
  });

  it('callbacks are handed out once', async () => {
    const store = open();
    await store.enqueue(invocation('cb', { callbackUrl: 'http://127.0.0.1:9/cb' }), 0);
    await store.claim(0);
    await store.finish('cb', { status: 'succeeded', envelope: { success: true } }, 10);
    expect((await store.takeCallbacks(10)).map((record) => record.requestId)).toEqual(['cb']);
    expect(await store.takeCallbacks(10)).toEqual([]);
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
