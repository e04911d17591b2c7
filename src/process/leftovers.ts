import fs from 'node:fs';
import { INVOCATION_VARIABLE, type Invocation } from './invocations';
import { attribute, isAdopted, rememberTree } from './orphans';
import { killGroup, readProcess, scanProcesses, type ProcessInfo } from './process-group';
import { isSubreaper } from './subreaper';
import { watchdog } from './watchdog';

/**
 * What an invocation leaves running once its main process has exited. Most of it stays in the
 * process group, but a function can also leave the group (node's `detached`, setsid, a
 * daemonising double fork), and then a signal to the group no longer reaches it. Where alyx is
 * a subreaper (see subreaper.ts), whatever descends from the main process is found by its
 * parent pids, and what was orphaned on the way by the attribution in orphans.ts. Everywhere,
 * every process of an invocation inherits a tag in its environment, and whatever carries the
 * tag outside the group is found by it too.
 */
export { INVOCATION_VARIABLE, newInvocationTag, type Invocation } from './invocations';

export interface Leftovers {
  /** Live processes still in the invocation's group. */
  readonly inGroup: number;
  /** Process groups, outside it, holding processes that descend from it or carry its tag. */
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
  const table = scanProcesses(invocation.pid, otherLeader, candidate) ?? [];
  const tree = descendants(invocation, table);
  for (const info of table) {
    if (info.pgid === invocation.pid) inGroup.push(info);
    else if (tree.has(info.pid)) escaped.push(info);
    else {
      const tagged = taggedWith(info.pid, wanted);
      if (tagged) escaped.push(info);
      // Kernel threads (session 0) have no environment either; an orphan that is someone else's is not unsure.
      else if (tagged === null && info.sid !== 0 && !(isSubreaper() && isAdopted(info))) unsure.push(info);
    }
  }
  return { inGroup, escaped, unsure };
}

/**
 * The processes that descend from the invocation's main process by parent pid (while it runs),
 * and from the orphans alyx adopted that are the invocation's, with those roots. Where alyx is
 * not a subreaper an orphan's parent pid leads to init, and only the main process's subtree
 * is walked.
 */
function descendants(invocation: Invocation, table: readonly ProcessInfo[]): Set<number> {
  const members = new Set<number>();
  const adopting = isSubreaper();
  const children = new Map<number, ProcessInfo[]>();
  for (const info of table) {
    const siblings = children.get(info.ppid);
    if (siblings) siblings.push(info);
    else children.set(info.ppid, [info]);
  }
  const mine = (info: ProcessInfo): boolean => {
    const owner = attribute(info).owner;
    return owner !== null && owner.pid === invocation.pid && owner.tag === invocation.tag;
  };
  const queue = table.filter((info) => info.pid === invocation.pid || (adopting && isAdopted(info) && mine(info)));
  const found: ProcessInfo[] = [];
  while (queue.length > 0) {
    const info = queue.pop() as ProcessInfo;
    if (members.has(info.pid)) continue;
    members.add(info.pid);
    found.push(info);
    queue.push(...(children.get(info.pid) ?? []));
  }
  rememberTree(invocation, found);
  return members;
}

/** What is left once the main process has exited (or, for a warm process, while it runs). */
export function findLeftovers(invocation: Invocation): Leftovers {
  const { inGroup, escaped, unsure } = invocationProcesses(invocation);
  // A group can only be joined inside its own session, and these sessions were made by the function: the group is its.
  const groups = new Set(escaped.map((info) => info.pgid).filter((pgid) => pgid > 1 && pgid !== invocation.pid));
  return { inGroup: inGroup.length, escapedGroups: [...groups], unsure: unsure.map((info) => info.pid) };
}

/** Ends the escaped groups (the caller ends its own group). */
export function endEscaped(leftovers: Leftovers): Promise<void>[] {
  return leftovers.escapedGroups.map((pgid) => killGroup(pgid));
}

/**
 * Ends a function process that is still running and everything it started, wherever that went:
 * its tree is looked at before the main process is ended, while every parent link is whole.
 */
export async function endWholeTree(invocation: Invocation): Promise<void> {
  const first = findLeftovers(invocation);
  const kills: Promise<unknown>[] = [killGroup(invocation.pid), ...endEscaped(first)];
  if (first.unsure.length > 0) kills.push(endUnsure(invocation, first.unsure));
  await Promise.all(kills);
  // A process may have left the group while it was being ended: look once more.
  const late = findLeftovers(invocation);
  if (late.inGroup > 0 || late.escapedGroups.length > 0) await Promise.all([killGroup(invocation.pid), ...endEscaped(late)]);
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
