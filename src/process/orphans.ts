import fs from 'node:fs';
import type { Logger } from '../logger';
import { loadPosixAddon } from './addon';
import type { Invocation, ProcessOwner } from './owner';
import { killGroup, readProcess, type ProcessInfo } from './process-group';

/**
 * Orphans alyx adopted as a subreaper: a process whose parent exited while it ran becomes
 * alyx's child, whatever it did to its environment or session. Which invocation's it is comes
 * from, in order: having been seen in that invocation's tree; its session or group being a
 * running function process's; holding that invocation's stdin, stdout or stderr; and when it
 * started, if only one function process ran then. Otherwise it is nobody's for sure, and it is
 * ended only once every function process that ran when it started has ended.
 */

export interface Attribution {
  /** The invocation it is sure to belong to, or null. */
  readonly owner: Invocation | null;
  /** When there is no owner: the invocations that ran when it started. */
  readonly candidates: readonly Invocation[];
}

interface Known extends Attribution {
  readonly startTicks: number;
  /** When it was decided (performance.now()). */
  readonly at: number;
}

/** An orphan nobody owns is looked at again after this long: each look reads its fds. */
const UNOWNED_RECHECK_MS = 100;

/** The adopted orphans of one ProcessOwner: their attribution, and the groups listed with its watchdog. */
export class Orphans {
  readonly #owner: ProcessOwner;
  /** Attributions by pid, checked against the start time (a pid is used again once free). */
  readonly #known = new Map<number, Known>();
  /** Groups of adopted orphans listed with the watchdog. */
  readonly #listed = new Set<number>();
  /** Groups being ended now. */
  readonly #ending = new Set<number>();

  constructor(owner: ProcessOwner) {
    this.#owner = owner;
  }

  /** The groups of adopted orphans that alyx ends if it dies. */
  listedGroups(): number[] {
    return [...this.#listed];
  }

  /** The orphans alyx has adopted and that still run. */
  adopted(): ProcessInfo[] {
    const found: ProcessInfo[] = [];
    for (const pid of childPids()) {
      if (this.#owner.isOwnChild(pid)) continue;
      const info = readProcess(pid);
      if (info && info.ppid === process.pid) found.push(info);
    }
    return found;
  }

  /**
   * Whether `info` is an orphan alyx adopted: its child, but not one alyx started. Orphans come
   * to the main thread; a process alyx starts from libuv's pool (see native-process) is that
   * thread's child, and never shows among the main thread's, not even in the moment before its
   * pid reaches JavaScript (when it is not yet alyx's own child either).
   */
  isAdopted(info: ProcessInfo): boolean {
    return info.ppid === process.pid && !this.#owner.isOwnChild(info.pid) && childPids().includes(info.pid);
  }

  /**
   * The children of alyx's threads other than the main one: the processes started from libuv's
   * pool (native-process's startNativeProcessAsync), including any whose pid has not reached
   * JavaScript yet. For alyx's last moments.
   */
  poolThreadsChildren(): ProcessInfo[] {
    const found: ProcessInfo[] = [];
    let threads: string[];
    try {
      threads = fs.readdirSync(`/proc/${process.pid}/task`);
    } catch {
      return found;
    }
    for (const thread of threads) {
      if (thread === String(process.pid)) continue;
      for (const pid of childPids(thread)) {
        const info = readProcess(pid);
        if (info) found.push(info);
      }
    }
    return found;
  }

  /** Which invocation an adopted orphan belongs to; cached per process. */
  attribute(info: ProcessInfo): Attribution {
    const cached = this.#known.get(info.pid);
    if (cached && cached.startTicks === info.startTicks && (cached.owner || performance.now() - cached.at < UNOWNED_RECHECK_MS)) return cached;
    const attribution = this.#attributeNow(info);
    this.#known.set(info.pid, { ...attribution, startTicks: info.startTicks, at: performance.now() });
    return attribution;
  }

  /** Whether an orphan may be ended: it belongs to an ended invocation, or all that could own it have ended. */
  isLeftOver(attribution: Attribution): boolean {
    if (attribution.owner) return !this.#owner.isRunning(attribution.owner);
    return attribution.candidates.length > 0 && attribution.candidates.every((candidate) => !this.#owner.isRunning(candidate));
  }

  /**
   * Reaps adopted orphans that have exited, lists the live ones' groups with the watchdog, and
   * ends those that are left over. Returns how many groups it started ending.
   */
  sweep(logger?: Logger): number {
    const addon = loadPosixAddon();
    let started = 0;
    const alive = new Set<number>();
    for (const pid of childPids()) {
      if (this.#owner.isOwnChild(pid)) continue;
      const info = readProcess(pid);
      if (!info) {
        // A zombie (or gone): only a process alyx did not start is waited for here.
        addon?.reap(pid);
        this.#known.delete(pid);
        continue;
      }
      if (info.ppid !== process.pid) continue;
      alive.add(info.pgid);
      if (!this.#listed.has(info.pgid) && !this.#owner.runningLeader(info.pgid)) {
        this.#listed.add(info.pgid);
        this.#owner.listGroup(info.pgid);
        logger?.debug({ pid, pgid: info.pgid }, 'an orphaned process is now ended with alyx if alyx dies');
      }
      const attribution = this.attribute(info);
      // Nobody's for sure, and only warm processes that may have started it still run.
      if (!attribution.owner && this.#owner.replaceIfAllWarm(attribution.candidates) > 0) {
        logger?.debug({ pid }, 'ended the warm processes that an orphaned process could have come from');
      }
      if (this.isLeftOver(attribution) && !this.#ending.has(info.pgid)) {
        this.#ending.add(info.pgid);
        started++;
        const pgid = info.pgid;
        logger?.warn({ pid, pgid }, 'ended an orphaned process group that a function left behind');
        void killGroup(pgid).finally(() => this.#ending.delete(pgid));
      }
    }
    for (const pgid of this.#listed) {
      if (alive.has(pgid) || this.#ending.has(pgid)) continue;
      this.#listed.delete(pgid);
      this.#owner.unlistGroup(pgid);
    }
    for (const pid of this.#known.keys()) if (!readProcess(pid)) this.#known.delete(pid);
    return started;
  }

  #attributeNow(info: ProcessInfo): Attribution {
    const owner = this.#owner;
    const seen = owner.seenIn(info);
    if (seen) return { owner: seen, candidates: [] };
    // A session or group is joined only from inside it: one a function process leads is its own.
    const leader = owner.runningLeader(info.sid) ?? owner.runningLeader(info.pgid);
    if (leader) return { owner: leader, candidates: [] };
    const holding = owner.invocationHolding(openLinks(info.pid));
    if (holding) return { owner: holding, candidates: [] };
    const { invocations, complete } = owner.runningAt(info.startTicks);
    if (complete && invocations.length === 1) return { owner: invocations[0], candidates: [] };
    return { owner: null, candidates: invocations };
  }
}

/**
 * alyx's children now: its own and the orphans it adopted. Orphans come to the main thread.
 * Another `thread`: the children that thread started.
 */
function childPids(thread = String(process.pid)): number[] {
  try {
    return fs
      .readFileSync(`/proc/${process.pid}/task/${thread}/children`, 'latin1')
      .split(' ')
      .filter((entry) => entry !== '')
      .map(Number);
  } catch {
    return [];
  }
}

/** Where a process's fds lead (sockets and pipes only). */
function openLinks(pid: number): string[] {
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return [];
  }
  const links: string[] = [];
  for (const fd of fds) {
    try {
      const link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (link.startsWith('socket:') || link.startsWith('pipe:')) links.push(link);
    } catch {
      // closed meanwhile
    }
  }
  return links;
}
