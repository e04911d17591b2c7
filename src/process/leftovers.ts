import type { Logger } from '../logger';
import { owner, type Invocation } from './owner';
import { killGroup, scanProcesses, type ProcessInfo } from './process-group';

/**
 * What a function process leaves running once it has exited (or, for a warm one, what it
 * started while it waited). Most of it stays in its process group, but a function can also
 * leave the group (node's `detached`, setsid, a daemonising double fork), and then a signal to
 * the group no longer reaches it. What descends from the main process or from a member of its
 * group is found by parent pids; where alyx is a subreaper, what was orphaned on the way is
 * alyx's child, attributed as orphans.ts says. Nothing here depends on what a function can see
 * or change: its environment plays no part.
 */

export interface Leftovers {
  /** Live processes still in the invocation's group. */
  readonly inGroup: number;
  /** Process groups, outside it, holding processes that descend from it. */
  readonly escapedGroups: readonly number[];
}

/**
 * One pass over /proc: the live processes of the invocation, in its group and escaped from it.
 * Only processes started after the leader are candidates, and the sessions of the other
 * function processes alyx started (running or warm) are skipped.
 */
export function invocationProcesses(invocation: Invocation): { inGroup: ProcessInfo[]; escaped: ProcessInfo[] } {
  // Another function process alyx started (its own group's leader) is not this one's leftover,
  // nor is what runs in its session or another invocation's, alyx itself, or what started before.
  const otherLeader = (pid: number): boolean => pid !== invocation.pid && owner.runningLeader(pid) !== null;
  const candidate = (info: ProcessInfo): boolean =>
    info.pgid === invocation.pid ||
    (info.pid !== process.pid && info.startTicks >= invocation.startTicks && (info.sid === invocation.pid || owner.runningLeader(info.sid) === null));
  const table = scanProcesses(invocation.pid, otherLeader, candidate) ?? [];
  const inGroup: ProcessInfo[] = [];
  const escaped: ProcessInfo[] = [];
  if (table.length === 0) return { inGroup, escaped };
  const tree = descendants(invocation, table);
  for (const info of table) {
    if (info.pgid === invocation.pid) inGroup.push(info);
    else if (tree.has(info.pid)) escaped.push(info);
  }
  return { inGroup, escaped };
}

/**
 * The processes that descend, by parent pid, from the invocation's main process (while it
 * runs), from the members of its group, and from the orphans alyx adopted that are the
 * invocation's, with those roots. Where alyx is not a subreaper an orphan's parent pid leads
 * to init, and only the subtrees of the main process and its group are walked.
 */
function descendants(invocation: Invocation, table: readonly ProcessInfo[]): Set<number> {
  const members = new Set<number>();
  const adopting = owner.isSubreaper;
  const children = new Map<number, ProcessInfo[]>();
  for (const info of table) {
    const siblings = children.get(info.ppid);
    if (siblings) siblings.push(info);
    else children.set(info.ppid, [info]);
  }
  const mine = (info: ProcessInfo): boolean => owner.orphans.attribute(info).owner === invocation;
  const queue = table.filter((info) => info.pgid === invocation.pid || (adopting && owner.orphans.isAdopted(info) && mine(info)));
  const found: ProcessInfo[] = [];
  while (queue.length > 0) {
    const info = queue.pop() as ProcessInfo;
    if (members.has(info.pid)) continue;
    members.add(info.pid);
    found.push(info);
    queue.push(...(children.get(info.pid) ?? []));
  }
  owner.sawTree(invocation, found);
  return members;
}

/** What is left once the main process has exited (or, for a warm process, while it runs). */
export function findLeftovers(invocation: Invocation): Leftovers {
  const { inGroup, escaped } = invocationProcesses(invocation);
  // A group can only be joined inside its own session, and these sessions were made by the function: the group is its.
  const groups = new Set(escaped.map((info) => info.pgid).filter((pgid) => pgid > 1 && pgid !== invocation.pid));
  return { inGroup: inGroup.length, escapedGroups: [...groups] };
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
  await Promise.all([killGroup(invocation.pid), ...endEscaped(first)]);
  // A process may have left the group while it was being ended: look once more.
  const late = findLeftovers(invocation);
  if (late.inGroup > 0 || late.escapedGroups.length > 0) await Promise.all([killGroup(invocation.pid), ...endEscaped(late)]);
}

/**
 * The ends of process groups one run has started, and what it logs of them. `invocation` is
 * null for a process the owner has no record of (it could not be started).
 */
export class TreeEnds {
  readonly #leader: number;
  readonly #invocation: Invocation | null;
  readonly #logger: Logger;
  readonly #kills: Promise<void>[] = [];
  /** Set once the run waits for the ends: it looks once more itself then. */
  #closing = false;

  constructor(leader: number, invocation: Invocation | null, logger: Logger) {
    this.#leader = leader;
    this.#invocation = invocation;
    this.#logger = logger;
  }

  /** Ends the whole tree of a process that may still run: what left the group is looked at first, while every parent link is whole. */
  endTree(stillRunning: boolean): void {
    if (this.#invocation && stillRunning) this.#kills.push(...endEscaped(findLeftovers(this.#invocation)));
    this.#kills.push(killGroup(this.#leader));
  }

  /**
   * Once the main process has exited: ends what it left and logs it (the group's own members
   * are not news when alyx is ending the group anyway). A process can leave the group between
   * the look and the signal to the group, still holding stdout: it is looked for again once
   * those ends are done, not once stdout has closed.
   */
  endLeftovers(groupIsNews: boolean): void {
    if (!this.#invocation) return;
    this.#end(findLeftovers(this.#invocation), groupIsNews);
    if (this.#kills.length > 0) {
      void Promise.all(this.#kills).then(() => {
        if (!this.#closing) this.#endLate();
      });
    }
  }

  /** Resolves once every end is done, including those added while it waits; null when none was started. */
  done(): Promise<void> | null {
    this.#closing = true;
    return this.#kills.length === 0 ? null : this.#waitForAll();
  }

  async #waitForAll(): Promise<void> {
    await Promise.all(this.#kills);
    this.#endLate();
    for (let waited = 0; waited < this.#kills.length; ) {
      waited = this.#kills.length;
      await Promise.all(this.#kills);
    }
  }

  #end(leftovers: Leftovers, groupIsNews: boolean): void {
    const inGroup = groupIsNews ? leftovers.inGroup : 0;
    const escaped = leftovers.escapedGroups.length;
    if (inGroup > 0) this.#kills.push(killGroup(this.#leader));
    this.#kills.push(...endEscaped(leftovers));
    if (inGroup + escaped === 0) return;
    const what = [inGroup > 0 ? `${inGroup} process(es) the function left behind` : '', escaped > 0 ? `${escaped} process group(s) that had left its group` : ''];
    this.#logger.warn({ processes: inGroup, escaped_groups: escaped }, `ended ${what.filter(Boolean).join(' and ')}`);
  }

  /** A process may have left the group while it was being ended: looked for once more. */
  #endLate(): void {
    if (!this.#invocation) return;
    const late = findLeftovers(this.#invocation);
    if (late.escapedGroups.length > 0) this.#end(late, false);
  }
}
