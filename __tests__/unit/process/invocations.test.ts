import { finishInvocation, invocationHolding, invocationTagged, isRunning, registerInvocation, runningAt, runningInvocations, type Invocation } from '../../../src/process/invocations';
import { isLeftOver } from '../../../src/process/orphans';
import { ticksSinceBoot } from '../../../src/process/process-group';

/** Made-up function processes: pids far above any real one. */
let next = 4_000_000;
const invocation = (startTicks: number, stdio: string[] = []): Invocation => ({ pid: next++, startTicks, tag: `tag-${next}`, stdio });

describe('what an adopted orphan is attributed against', () => {
  it('names the invocations running when a process started, and ended ones that ran then', () => {
    const now = ticksSinceBoot(performance.now());
    const first = invocation(now - 1000);
    const second = invocation(now - 500);
    registerInvocation(first);
    registerInvocation(second);
    expect(runningAt(now - 700).invocations).toEqual([first]);
    expect(runningAt(now - 400).invocations).toEqual([first, second]);

    finishInvocation(first.pid);
    expect(isRunning(first)).toBe(false);
    expect(runningInvocations()).toContain(second);
    // A process started after it ended is not its own; one started while it ran may be.
    expect(runningAt(now + 100).invocations).toEqual([second]);
    expect(new Set(runningAt(now - 400).invocations)).toEqual(new Set([first, second]));
    finishInvocation(second.pid);
  });

  it('finds an invocation by its tag or by the stdio it was given, running or ended', () => {
    const one = invocation(1, ['socket:[111]', 'socket:[112]']);
    registerInvocation(one);
    expect(invocationTagged(one.tag)).toBe(one);
    expect(invocationHolding(['pipe:[5]', 'socket:[112]'])).toBe(one);
    finishInvocation(one.pid);
    expect(invocationTagged(one.tag)).toBe(one);
    expect(invocationHolding(['socket:[999]'])).toBeNull();
  });

  it('never lets an orphan be ended while an invocation that may own it runs', () => {
    const running = invocation(1);
    const ended = invocation(1);
    registerInvocation(running);
    registerInvocation(ended);
    finishInvocation(ended.pid);
    expect(isLeftOver({ owner: running, candidates: [] })).toBe(false);
    expect(isLeftOver({ owner: ended, candidates: [] })).toBe(true);
    expect(isLeftOver({ owner: null, candidates: [running, ended] })).toBe(false);
    expect(isLeftOver({ owner: null, candidates: [ended] })).toBe(true);
    // Nobody could have started it (a build's, or from before alyx ran anything): left alone.
    expect(isLeftOver({ owner: null, candidates: [] })).toBe(false);
    finishInvocation(running.pid);
  });
});
