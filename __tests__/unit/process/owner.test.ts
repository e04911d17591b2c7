import { ProcessOwner, type Invocation } from '../../../src/process/owner';
import { ticksSinceBoot } from '../../../src/process/process-group';

/** Made-up function processes: pids far above any real one. */
let next = 4_000_000;
const invocation = (startTicks: number, stdio: string[] = []): Invocation => ({ pid: next++, startTicks, stdio });

describe('what an adopted orphan is attributed against', () => {
  it('names the invocations running when a process started, and ended ones that ran then', () => {
    const owner = new ProcessOwner();
    const now = ticksSinceBoot(performance.now());
    const first = invocation(now - 1000);
    const second = invocation(now - 500);
    owner.started(first);
    owner.started(second);
    expect(owner.runningAt(now - 700).invocations).toEqual([first]);
    expect(owner.runningAt(now - 400).invocations).toEqual([first, second]);

    owner.finished(first.pid);
    expect(owner.isRunning(first)).toBe(false);
    expect(owner.runningInvocations()).toEqual([second]);
    // A process started after it ended is not its own; one started while it ran may be.
    expect(owner.runningAt(now + 100).invocations).toEqual([second]);
    expect(new Set(owner.runningAt(now - 400).invocations)).toEqual(new Set([first, second]));
  });

  it('finds an invocation by the stdio it was given, running or ended', () => {
    const owner = new ProcessOwner();
    const one = invocation(1, ['socket:[111]', 'socket:[112]']);
    owner.started(one);
    expect(owner.invocationHolding(['pipe:[5]', 'socket:[112]'])).toBe(one);
    owner.finished(one.pid);
    expect(owner.invocationHolding(['socket:[111]'])).toBe(one);
    expect(owner.invocationHolding(['socket:[999]'])).toBeNull();
  });

  it("remembers the processes seen in a running invocation's tree, by pid and start, until it ends", () => {
    const owner = new ProcessOwner();
    const one = invocation(1);
    owner.started(one);
    const helper = { pid: 4_100_000, ppid: one.pid, pgid: 4_100_000, sid: 4_100_000, startTicks: 7, residentPages: 0 };
    owner.sawTree(one, [helper]);
    expect(owner.seenIn(helper)).toBe(one);
    // The same pid with another start is another process.
    expect(owner.seenIn({ ...helper, startTicks: 8 })).toBeNull();
    owner.finished(one.pid);
    expect(owner.seenIn(helper)).toBeNull();
  });

  it('never lets an orphan be ended while an invocation that may own it runs', () => {
    const owner = new ProcessOwner();
    const running = invocation(1);
    const ended = invocation(1);
    owner.started(running);
    owner.started(ended);
    owner.finished(ended.pid);
    const { orphans } = owner;
    expect(orphans.isLeftOver({ owner: running, candidates: [] })).toBe(false);
    expect(orphans.isLeftOver({ owner: ended, candidates: [] })).toBe(true);
    expect(orphans.isLeftOver({ owner: null, candidates: [running, ended] })).toBe(false);
    expect(orphans.isLeftOver({ owner: null, candidates: [ended] })).toBe(true);
    // Nobody could have started it (a build's, or from before alyx ran anything): left alone.
    expect(orphans.isLeftOver({ owner: null, candidates: [] })).toBe(false);
  });

  it('replaces warm processes for an orphan only when every candidate still running is warm', () => {
    const owner = new ProcessOwner();
    const [warm, busy] = [invocation(1), invocation(1)];
    owner.started(warm);
    owner.started(busy);
    let replaced = 0;
    owner.markWarm(warm.pid, () => replaced++);
    expect(owner.replaceIfAllWarm([warm, busy])).toBe(0);
    expect(owner.replaceIfAllWarm([warm])).toBe(1);
    owner.noLongerWarm(warm.pid);
    expect(owner.replaceIfAllWarm([warm])).toBe(0);
    expect(replaced).toBe(1);
  });
});
