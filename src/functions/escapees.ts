import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { scanProcesses } from './process-group';

/**
 * A function can leave its process group (node's `detached`, setsid, a daemonising double
 * fork), and then a signal to the group no longer reaches it. Every process of an invocation
 * therefore inherits a tag in its environment, and the processes that carry it outside the
 * group are found by it.
 */
export const INVOCATION_VARIABLE = 'ALYX_INVOCATION';

/** A fresh tag for one invocation. */
export function newInvocationTag(): string {
  return randomBytes(8).toString('hex');
}

/** The leader of an invocation's process group and when it started. */
export interface GroupLeader {
  readonly pid: number;
  readonly startTicks: number;
}

/**
 * Process groups holding processes of the invocation that left the leader's group. Only
 * processes started after the leader are looked at, and the sessions of other running
 * invocations are skipped, so the environment of few processes is read.
 */
export function escapedGroups(leader: GroupLeader, tag: string, otherSessions: ReadonlySet<number>): number[] {
  const wanted = `${INVOCATION_VARIABLE}=${tag}`;
  const groups = new Set<number>();
  for (const info of scanProcesses() ?? []) {
    if (info.pid === process.pid || info.pgid === leader.pid || info.startTicks < leader.startTicks) continue;
    if (info.sid !== leader.pid && otherSessions.has(info.sid)) continue;
    // A group can only be joined inside its session, and these sessions were made by the function: the whole group is its.
    if (environHas(info.pid, wanted)) groups.add(info.pgid);
  }
  return [...groups];
}

function environHas(pid: number, entry: string): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(entry);
  } catch {
    return false; // gone, or not ours to read
  }
}
