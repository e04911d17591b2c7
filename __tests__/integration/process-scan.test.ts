import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { lastPid, scanProcesses, signalGroup } from '../../src/process/process-group';
import { findLeftovers } from '../../src/process/leftovers';
import { isAlive, waitFor } from '../helpers/processes';

/** A node process (it runs several threads) leading its own group, with one `sleep` child. */
const LEADER = "const c = require('node:child_process').spawn('sleep', ['30'], { stdio: 'ignore' }); console.log(c.pid); setInterval(() => {}, 1000);";

const onLinux = process.platform === 'linux';
if (!onLinux) console.warn('SKIP: the /proc process scan tests need Linux');
const linuxOnly = onLinux ? describe : describe.skip;

linuxOnly('the look at /proc for what a function started', () => {
  let leader: ChildProcess | null = null;
  const others: ChildProcess[] = [];

  afterEach(async () => {
    for (const child of [leader, ...others.splice(0)]) {
      if (child?.pid === undefined) continue;
      signalGroup(child.pid, 'SIGKILL');
      const pid = child.pid;
      await waitFor(() => !isAlive(pid));
    }
    leader = null;
  });

  async function startLeader(): Promise<{ pid: number; childPid: number }> {
    leader = spawn(process.execPath, ['-e', LEADER], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    const childPid = await new Promise<number>((resolve, reject) => {
      leader?.stdout?.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
      leader?.once('exit', () => reject(new Error('the leader exited early')));
    });
    return { pid: leader.pid as number, childPid };
  }

  it("lists the group's processes, not its threads, whether it tries the pids made since or lists /proc", async () => {
    const { pid, childPid } = await startLeader();
    // The node leader's threads took pids too: the span is small enough to try pid by pid.
    const span = lastPid() - pid;
    expect(span).toBeGreaterThan(1);
    const inGroup = (scanned: ReturnType<typeof scanProcesses>): number[] =>
      (scanned ?? []).filter((info) => info.pgid === pid).map((info) => info.pid).sort((a, b) => a - b);
    const tried = inGroup(scanProcesses(pid));
    const listed = inGroup(scanProcesses());
    expect(tried).toEqual([pid, childPid].sort((a, b) => a - b));
    expect(listed).toEqual(tried);
    // Filtered while scanning: only what is kept is checked to be a process, and returned.
    const ofGroup = (info: { pgid: number }): boolean => info.pgid === pid;
    expect(inGroup(scanProcesses(pid, undefined, ofGroup))).toEqual(tried);
    expect(scanProcesses(pid, undefined, (info) => info.pid === childPid)?.map((info) => info.pid)).toEqual([childPid]);
  });

  it('finds what the main process left in its group once it has exited, and nothing after a process that made none', async () => {
    const { pid, childPid } = await startLeader();
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !isAlive(pid));
    expect(isAlive(childPid)).toBe(true);
    expect(findLeftovers({ pid, startTicks: 0})).toMatchObject({ inGroup: 1, escapedGroups: [] });

    const lone = spawn('true', [], { detached: true, stdio: 'ignore' });
    const lonePid = lone.pid as number;
    await new Promise((resolve) => lone.once('exit', resolve));
    expect(findLeftovers({ pid: lonePid, startTicks: 0})).toMatchObject({ inGroup: 0, escapedGroups: [] });
  });

  it('finds by parent pid what a member of the group started in a session of its own with an empty environment, once the main process is gone', async () => {
    // main (leads the group) -> a subshell (stays in the group) -> sleep (its own session, no environment).
    leader = spawn('/bin/sh', ['-c', '( setsid env -i sleep 30 & echo $!; wait ) & wait'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    const main = leader.pid as number;
    const escaped = await new Promise<number>((resolve) => leader?.stdout?.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim()))));
    others.push({ pid: escaped } as ChildProcess);
    expect(await waitFor(() => readEnviron(escaped) === '')).toBe(true);
    process.kill(main, 'SIGKILL');
    await waitFor(() => !isAlive(main));
    // Looked at until it holds (within a deadline): the kernel updates what /proc shows of the group as the main process goes.
    const expected = { inGroup: 1, escapedGroups: [escaped] };
    await waitFor(() => JSON.stringify(findLeftovers({ pid: main, startTicks: 0 })) === JSON.stringify(expected), 5000);
    expect(findLeftovers({ pid: main, startTicks: 0 })).toEqual(expected);
  });
});

function readEnviron(pid: number): string | null {
  try {
    return fs.readFileSync(`/proc/${pid}/environ`, 'latin1');
  } catch {
    return null;
  }
}
