import fs from 'node:fs';
import { randomHex } from '../random-hex';
import { killGroup, readProcess, scanProcesses, type ProcessInfo } from './process-group';
import { watchdog } from './watchdog';

/**
 * What an invocation leaves running once its main process has exited. Most of it stays in the
 * process group, but a function can also leave the group (node's `detached`, setsid, a
 * daemonising double fork), and then a signal to the group no longer reaches it. So every
 * process of an invocation inherits a tag in its environment, and whatever carries the tag
 * outside the group is found by it.
 */
export const INVOCATION_VARIABLE = 'ALYX_INVOCATION';

/** A fresh tag for one invocation. */
export function newInvocationTag(): string {
  return randomHex(8);
}

/** The leader of an invocation's process group, when it started, and its tag. */
export interface Invocation {
  readonly pid: number;
  readonly startTicks: number;
  readonly tag: string;
}

export interface Leftovers {
  /** Live processes still in the invocation's group. */
  readonly inGroup: number;
  /** Process groups, outside it, holding processes that carry its tag. */
  readonly escapedGroups: readonly number[];
  /** Processes outside it whose environment read empty: caught in the middle of exec, perhaps (see endUnsure). */
  readonly unsure: readonly number[];
}

/**
 * One pass over /proc: the live processes of the invocation, in its group and escaped from it.
 * Only processes started after the leader are candidates, and the sessions of the other
 * function processes alyx started (running or warm, all listed with the watchdog) are skipped,
 * so the environment of few processes is read.
 */
export function invocationProcesses(invocation: Invocation): { inGroup: ProcessInfo[]; escaped: ProcessInfo[]; unsure: ProcessInfo[] } {
  const wanted = tagEntry(invocation);
  const inGroup: ProcessInfo[] = [];
  const escaped: ProcessInfo[] = [];
  const unsure: ProcessInfo[] = [];
  // Another function process alyx started (its own group's leader) is not this one's leftover,
  // nor is what runs in its session or another invocation's, alyx itself, or what started before.
  const otherLeader = (pid: number): boolean => pid !== invocation.pid && watchdog.isWatching(pid);
  const candidate = (info: ProcessInfo): boolean =>
    info.pgid === invocation.pid ||
    (info.pid !== process.pid &&
      info.startTicks >= invocation.startTicks &&
      (info.sid === invocation.pid || !watchdog.isWatching(info.sid)));
  for (const info of scanProcesses(invocation.pid, otherLeader, candidate) ?? []) {
    if (info.pgid === invocation.pid) inGroup.push(info);
    else {
      const tagged = taggedWith(info.pid, wanted);
      if (tagged) escaped.push(info);
      // Kernel threads (session 0) have no environment either.
      else if (tagged === null && info.sid !== 0) unsure.push(info);
    }
  }
  return { inGroup, escaped, unsure };
}

/** What is left once the main process has exited. */
export function findLeftovers(invocation: Invocation): Leftovers {
  const { inGroup, escaped, unsure } = invocationProcesses(invocation);
  // A group can only be joined inside its own session, and these sessions were made by the function: the group is its.
  return { inGroup: inGroup.length, escapedGroups: [...new Set(escaped.map((info) => info.pgid))], unsure: unsure.map((info) => info.pid) };
}

/** Ends the escaped groups (the caller ends its own group). */
export function endEscaped(leftovers: Leftovers): Promise<void>[] {
  return leftovers.escapedGroups.map((pgid) => killGroup(pgid));
}

/**
 * A process caught in the middle of exec shows an empty environment for a moment, and a
 * function can start a process in a new session and exec in it just as its main process
 * exits. Those are looked at again a few times, and the groups of the ones that carry the
 * tag are ended. Resolves with how many groups it ended.
 */
export async function endUnsure(invocation: Invocation, unsure: readonly number[]): Promise<number> {
  const wanted = tagEntry(invocation);
  let pending = [...unsure];
  let ended = 0;
  for (let attempt = 0; attempt < UNSURE_LOOKS && pending.length > 0; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, UNSURE_WAIT_MS));
    const still: number[] = [];
    for (const pid of pending) {
      const tagged = taggedWith(pid, wanted);
      const info = tagged ? readProcess(pid) : null;
      if (info) {
        ended++;
        await killGroup(info.pgid);
      } else if (tagged === null) still.push(pid);
    }
    pending = still;
  }
  return ended;
}

const UNSURE_LOOKS = 5;
const UNSURE_WAIT_MS = 20;

function tagEntry(invocation: Invocation): string {
  return `${INVOCATION_VARIABLE}=${invocation.tag}`;
}

/** Whether the process's environment holds `entry`; null when it reads empty. */
function taggedWith(pid: number, entry: string): boolean | null {
  let environ: string;
  try {
    environ = fs.readFileSync(`/proc/${pid}/environ`, 'latin1');
  } catch {
    return false; // gone, or not ours to read
  }
  return environ === '' ? null : environ.split('\0').includes(entry);
}
