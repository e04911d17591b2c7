import path from 'node:path';
import { JetStreamStore } from '../../src/state/jetstream-store';
import { parseNatsUrl } from '../../src/state/nats-url';
import { SqliteStore } from '../../src/state/sqlite-store';
import type { NewInvocation, StateStore } from '../../src/state/store';
import { hasNatsServer, NatsServers } from '../helpers/nats-server';
import { makeProject, removeProject } from '../helpers/project';

/**
 * What every state store promises (SPEC §11, §12, §14), against a real SQLite file and a real
 * nats-server with JetStream. Times are offsets from the real clock: JetStream puts a delivery
 * back for a real delay.
 */
interface Backend {
  readonly name: string;
  readonly available: () => boolean;
  /** Fresh, empty state for one test. */
  readonly setUp: () => Promise<void>;
  readonly tearDown: () => Promise<void>;
  /** A store on the test's state; each call is another process's view of the same state. */
  readonly open: (resultTtlMs?: number) => Promise<StateStore>;
}

let dir = '';
let nats: NatsServers | null = null;

const BACKENDS: Backend[] = [
  {
    name: 'SqliteStore',
    available: () => true,
    setUp: async () => {
      dir = makeProject();
    },
    tearDown: async () => removeProject(dir),
    open: async (resultTtlMs = 60_000) => new SqliteStore({ file: path.join(dir, 'state', 'state.db'), resultTtlMs }),
  },
  {
    name: 'JetStreamStore',
    available: () => hasNatsServer('the JetStream state store'),
    setUp: async () => {
      nats = await NatsServers.single();
    },
    tearDown: async () => {
      await nats?.stop();
      nats = null;
    },
    open: async (resultTtlMs = 60_000) => JetStreamStore.connect({ target: parseNatsUrl((nats as NatsServers).url), resultTtlMs, ackWaitMs: 10_000 }),
  },
];

const invocation = (requestId: string, extra: Partial<NewInvocation> = {}): NewInvocation => ({
  requestId,
  function: 'hello',
  input: { n: requestId },
  trigger: { type: 'async' },
  callbackUrl: null,
  ...extra,
});

describe.each(BACKENDS)('$name', (backend) => {
  const run = backend.available() ? it : it.skip;
  const opened: StateStore[] = [];
  const open = async (resultTtlMs?: number): Promise<StateStore> => {
    const store = await backend.open(resultTtlMs);
    opened.push(store);
    return store;
  };
  let t0 = 0;

  beforeEach(async () => {
    t0 = Date.now();
    if (backend.available()) await backend.setUp();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
    if (backend.available()) await backend.tearDown();
  });

  run('an existing request id is kept as it is: the id is an idempotency key', async () => {
    const store = await open();
    expect((await store.enqueue(invocation('same', { input: { first: true } }))).created).toBe(true);
    const second = await store.enqueue(invocation('same', { input: { second: true } }));
    expect(second.created).toBe(false);
    expect(second.record.input).toEqual({ first: true });
    expect(await store.get('same')).toMatchObject({ requestId: 'same', status: 'queued', attempts: 0, failures: 0, input: { first: true } });
    expect(await store.get('never')).toBeNull();
  });

  run('claims due invocations oldest first, each once, counting attempts', async () => {
    const store = await open();
    await store.enqueue(invocation('a'), t0 + 100);
    await store.enqueue(invocation('b'), t0 + 200);
    expect((await store.claim(t0 + 300))?.requestId).toBe('a');
    expect(await store.claim(t0 + 300)).toMatchObject({ requestId: 'b', status: 'running', attempts: 1, startedAt: t0 + 300 });
    expect(await store.claim(t0 + 300)).toBeNull();
  });

  run('a failed attempt waits for its retry time; a dead one becomes a dead letter that can be retried or dropped', async () => {
    const store = await open();
    await store.enqueue(invocation('r'), t0);
    await store.claim(t0);
    const error = { code: 'EXECUTION_ERROR', message: 'boom' };
    const retryAt = t0 + 1500;
    expect(await store.finish('r', { status: 'failed', envelope: { success: false, error }, runAt: retryAt }, t0 + 10)).toBe(true);
    expect(await store.get('r', t0 + 10)).toMatchObject({ status: 'failed', failures: 1, runAt: retryAt });
    expect(await store.claim(retryAt - 1)).toBeNull();
    if (store instanceof SqliteStore) expect(await store.nextDueAt()).toBe(retryAt);
    expect(await claimWithin(store, retryAt)).toMatchObject({ requestId: 'r', attempts: 2 });
    expect(await store.finish('r', { status: 'dead', envelope: { success: false, error } }, t0 + 2000)).toBe(true);
    expect(await store.get('r', t0 + 2000)).toMatchObject({ status: 'dead', failures: 2, finishedAt: t0 + 2000 });

    const [letter] = await store.listDeadLetters();
    expect(letter).toMatchObject({ requestId: 'r', function: 'hello', attempts: 2, error, failedAt: t0 + 2000 });
    expect(letter.id).toMatch(/^[0-9a-f]{16}$/);
    expect(await store.retryDeadLetter(letter.id, t0 + 2500)).toMatchObject({ requestId: 'r', status: 'queued', failures: 0, runAt: t0 + 2500 });
    expect(await store.listDeadLetters()).toEqual([]);
    expect(await store.retryDeadLetter(letter.id)).toBeNull();
    expect(await store.dropDeadLetter('nope')).toBe(false);
    // Queued again, it runs again: a third attempt.
    expect(await claimWithin(store, t0 + 2500)).toMatchObject({ requestId: 'r', attempts: 3, status: 'running' });
  });

  run('results are gone after result_ttl, dead letters stay until dropped', async () => {
    const store = await open(1000);
    for (const id of ['ok', 'dead']) {
      await store.enqueue(invocation(id), t0);
      await store.claim(t0);
    }
    await store.finish('ok', { status: 'succeeded', envelope: { success: true } }, t0 + 100);
    await store.finish('dead', { status: 'dead', envelope: { success: false } }, t0 + 100);
    expect(await store.get('ok', t0 + 1099)).not.toBeNull();
    expect(await store.get('ok', t0 + 1100)).toBeNull();
    await store.purgeExpired(t0 + 5000);
    expect(await store.get('dead', t0 + 5000)).toMatchObject({ status: 'dead' });
    const [letter] = await store.listDeadLetters();
    expect(await store.dropDeadLetter(letter.id)).toBe(true);
    expect(await store.get('dead', t0 + 5000)).toBeNull();
  });

  run('two stores on the same state never claim the same invocation', async () => {
    const [one, two] = [await open(), await open()];
    for (let i = 0; i < 60; i++) await one.enqueue(invocation(`r${i}`), t0 + i);
    const claimed: string[] = [];
    for (let round = 0; round < 60 && claimed.length < 60; round++) {
      const records = await Promise.all([one.claim(t0 + 10_000), two.claim(t0 + 10_000)]);
      for (const record of records) if (record) claimed.push(record.requestId);
    }
    expect(claimed).toHaveLength(60);
    expect(new Set(claimed).size).toBe(60);
  });

  run('a store that closes gives what it still runs back to the queue; its result after that is not recorded', async () => {
    const [one, two] = [await open(), await open()];
    await one.enqueue(invocation('r'), t0);
    await one.claim(t0);
    await one.close();
    const backAgain = await claimWithin(two, Date.now());
    expect(backAgain).toMatchObject({ requestId: 'r', attempts: 2 });
    expect(await two.finish('unknown', { status: 'succeeded', envelope: {} })).toBe(false);
  });

  run('a fire time is queued once, whichever store asks; a schedule seen first starts from its registration', async () => {
    const [one, two] = [await open(), await open()];
    const key = { function: 'hello', name: 'tick' };
    await one.registerSchedule(key, t0 + 1000);
    expect(await one.fireSchedule(key, t0 + 1000, invocation('f1000'))).toBe(false);
    expect(await one.fireSchedule(key, t0 + 2000, invocation('f2000'), t0 + 2000)).toBe(true);
    expect(await two.fireSchedule(key, t0 + 2000, invocation('f2000-again'))).toBe(false);
    expect(await two.get('f2000-again')).toBeNull();
    await two.registerSchedule(key, 0); // already known: left as it is
    expect(await two.scheduleRuns()).toEqual([{ function: 'hello', name: 'tick', lastFireAt: t0 + 2000, lastRunAt: t0 + 2000, lastStatus: 'queued' }]);
    await two.runScheduleNow(key, invocation('manual'), t0 + 2500);
    expect(await one.scheduleRuns()).toEqual([{ function: 'hello', name: 'tick', lastFireAt: t0 + 2000, lastRunAt: t0 + 2500, lastStatus: 'queued' }]);
  });

  run('stores racing to fire the same time queue it once', async () => {
    const stores = [await open(), await open(), await open()];
    const key = { function: 'hello', name: 'race' };
    await stores[0].registerSchedule(key, t0);
    const fired = await Promise.all(stores.map((store) => store.fireSchedule(key, t0 + 1000, invocation('fire-1000'), t0 + 1000)));
    expect(fired.filter(Boolean)).toHaveLength(1);
    expect(await claimWithin(stores[1], t0 + 1000)).toMatchObject({ requestId: 'fire-1000', attempts: 1 });
    expect(await stores[2].claim(t0 + 1000)).toBeNull();
  });

  run('callbacks are handed out once', async () => {
    const store = await open();
    await store.enqueue(invocation('cb', { callbackUrl: 'http://127.0.0.1:9/cb' }), t0);
    await store.claim(t0);
    await store.finish('cb', { status: 'succeeded', envelope: { success: true } }, t0 + 10);
    expect((await store.takeCallbacks(10)).map((record) => record.requestId)).toEqual(['cb']);
    expect(await store.takeCallbacks(10)).toEqual([]);
  });
});

/** Claims until something comes, for at most 5 s: a delivery put back for a delay comes back on the real clock. */
async function claimWithin(store: StateStore, now: number): Promise<Awaited<ReturnType<StateStore['claim']>>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const record = await store.claim(now);
    if (record || Date.now() > deadline) return record;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
