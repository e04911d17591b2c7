import { ConcurrencyLimiter } from '../../../src/invoke/limiter';

/** Lets queued promise callbacks run. */
const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('ConcurrencyLimiter', () => {
  it('runs up to the limit at once, queues the rest first come first served', async () => {
    const limiter = new ConcurrencyLimiter(2, 10);
    const order: string[] = [];
    const releases = await Promise.all([limiter.acquire('a', null), limiter.acquire('b', null)]);
    const waiting = ['c', 'd'].map((name) => limiter.acquire(name, null).then((release) => (order.push(name), release)));
    await flush();
    expect([limiter.running, limiter.waiting, order]).toEqual([2, 2, []]);
    releases[0]();
    await flush();
    expect(order).toEqual(['c']);
    releases[1]();
    await flush();
    expect(order).toEqual(['c', 'd']);
    (await Promise.all(waiting)).forEach((release) => release());
    expect(limiter.running).toBe(0);
  });

  it("past a function's own concurrency it waits, without holding back other functions", async () => {
    const limiter = new ConcurrencyLimiter(4, 10);
    const first = await limiter.acquire('one', 1);
    let secondStarted = false;
    const second = limiter.acquire('one', 1).then((release) => ((secondStarted = true), release));
    const other = await limiter.acquire('two', 1);
    await flush();
    expect(secondStarted).toBe(false);
    first();
    (await second)();
    other();
    expect(secondStarted).toBe(true);
  });

  it('calls onWait only for an invocation that has to queue', async () => {
    const limiter = new ConcurrencyLimiter(1, 5);
    const waits: string[] = [];
    const release = await limiter.acquire('a', null, undefined, () => waits.push('a'));
    const queued = limiter.acquire('b', null, undefined, () => waits.push('b'));
    expect(waits).toEqual(['b']);
    release();
    (await queued)();
  });

  it('refuses with OVERLOADED once the queue is full', async () => {
    const limiter = new ConcurrencyLimiter(1, 1);
    const running = await limiter.acquire('a', null);
    const queued = limiter.acquire('a', null);
    await expect(limiter.acquire('a', null)).rejects.toMatchObject({ code: 'OVERLOADED' });
    running();
    (await queued)();
  });

  it('a waiter whose signal aborts leaves the queue and never runs', async () => {
    const limiter = new ConcurrencyLimiter(1, 5);
    const running = await limiter.acquire('a', null);
    const controller = new AbortController();
    const cancelled = limiter.acquire('a', null, controller.signal);
    controller.abort();
    await expect(cancelled).rejects.toMatchObject({ code: 'CLIENT_CLOSED_REQUEST' });
    expect(limiter.waiting).toBe(0);
    running();
    expect(limiter.running).toBe(0);
  });

  it('a release called twice frees one slot only', async () => {
    const limiter = new ConcurrencyLimiter(1, 0);
    const release = await limiter.acquire('a', null);
    release();
    release();
    expect(limiter.running).toBe(0);
  });
});
