import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { WATCHDOG_SCRIPT } from '../../src/process/watchdog';
import { isAlive, waitFor } from '../helpers/processes';

/** The mask of signals a process ignores, from /proc/<pid>/status; 0 when it cannot be read. */
function ignoredSignals(pid: number): bigint {
  try {
    const line = /^SigIgn:\s*([0-9a-f]+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return line ? BigInt(`0x${line[1]}`) : 0n;
  } catch {
    return 0n;
  }
}

/** The watchdog's script on its own: the groups it was told of, less those released, are the ones it ends at EOF. */
describe('the watchdog script', () => {
  const leaders: ChildProcess[] = [];
  afterEach(() => {
    for (const leader of leaders.splice(0)) if (leader.pid !== undefined && isAlive(leader.pid)) process.kill(-leader.pid, 'SIGKILL');
  });

  /** A process group of two: a shell leading it and its sleep. */
  const group = (): number => {
    const leader = spawn('/bin/sh', ['-c', 'sleep 30 & wait'], { stdio: 'ignore', detached: true });
    leaders.push(leader);
    return leader.pid as number;
  };

  it('SIGKILLs the listed groups at EOF, and leaves alone a released one, including one whose id is a prefix of another', async () => {
    const [first, released, third] = [group(), group(), group()];
    const watchdog = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT, 'alyx-watchdog', 'test'], { stdio: ['pipe', 'ignore', 'inherit'], detached: true });
    const exited = new Promise((resolve) => watchdog.once('exit', resolve));
    // "-1" and "-<first digit>" name no listed group: they must not remove anything.
    watchdog.stdin?.end(`+${first}\n+${released}\n+${third}\n-1\n-${String(first)[0]}\n-${released}\n`);
    await exited;
    expect(await waitFor(() => !isAlive(first) && !isAlive(third), 5000)).toBe(true);
    expect(isAlive(released)).toBe(true);
  });

  it('also SIGKILLs what descends from a listed group, in other sessions and two levels down', async () => {
    const dir = fs.mkdtempSync('/tmp/alyx-watchdog-');
    const others: number[] = [];
    try {
      // The leader's child leaves for a session of its own, and starts a grandchild there.
      const leader = spawn('/bin/sh', ['-c', `setsid sh -c 'sleep 30 & echo $! > ${dir}/grandchild; echo $$ > ${dir}/child; wait' & wait`], { stdio: 'ignore', detached: true });
      leaders.push(leader);
      const read = (name: string): number => Number(fs.readFileSync(`${dir}/${name}`, 'utf8'));
      expect(await waitFor(() => fs.existsSync(`${dir}/child`) && fs.existsSync(`${dir}/grandchild`) && read('grandchild') > 0, 5000)).toBe(true);
      const [child, grandchild] = [read('child'), read('grandchild')];
      others.push(child, grandchild);
      const watchdog = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT, 'alyx-watchdog', 'test'], { stdio: ['pipe', 'ignore', 'inherit'], detached: true });
      const exited = new Promise((resolve) => watchdog.once('exit', resolve));
      watchdog.stdin?.end(`+${leader.pid}\n`);
      await exited;
      expect(await waitFor(() => ![leader.pid as number, child, grandchild].some(isAlive), 5000)).toBe(true);
    } finally {
      for (const pid of others) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ignores SIGTERM, SIGINT and SIGHUP: only the end of its input ends it', async () => {
    const listed = group();
    const watchdog = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT, 'alyx-watchdog', 'test'], { stdio: ['pipe', 'ignore', 'inherit'], detached: true });
    const exited = new Promise((resolve) => watchdog.once('exit', resolve));
    watchdog.stdin?.write(`+${listed}\n`);
    // Its trap has run once the kernel shows the three signals ignored (SigIgn: HUP 0x1, INT 0x2, TERM 0x4000).
    expect(await waitFor(() => (ignoredSignals(watchdog.pid as number) & 0x4003n) === 0x4003n, 5000)).toBe(true);
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.kill(watchdog.pid as number, signal);
    // Nothing to poll for: it must still be there once the signals have had time to land.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect([isAlive(watchdog.pid as number), isAlive(listed)]).toEqual([true, true]);
    watchdog.stdin?.end();
    await exited;
    expect(await waitFor(() => !isAlive(listed), 5000)).toBe(true);
  });
});
