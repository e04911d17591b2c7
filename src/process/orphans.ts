import fs from 'node:fs';
import type { Logger } from '../logger';
import { loadPosixAddon } from './addon';
import { INVOCATION_VARIABLE, invocationHolding, invocationTagged, isRunning, replaceIfAllWarm, runningAt, runningLeader, type Invocation } from './invocations';
import { isOwnChild } from './own-children';
import { killGroup, readProcess, type ProcessInfo } from './process-group';
import { watchdog } from './watchdog';

/**
 * Orphans alyx adopted as a subreaper (see subreaper.ts): a process whose parent exited while it
 * ran becomes alyx's child, whatever it did to its environment or session. Which invocation's
 * it is comes from, in order: having been seen in that invocation's tree; its session or group
 * being a running invocation's; its tag; holding that invocation's stdin, stdout or stderr;
 * and when it started, if only one invocation ran then. Otherwise it is nobody's for sure, and
 * it is ended only once every invocation that ran when it started has ended.
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

/** An orphan nobody owns is looked at again after this long: each look reads its environment and fds. */
const UNOWNED_RECHECK_MS = 100;

/** Attributions by pid, checked against the start time (a pid is used again once free). */
const known = new Map<number, Known>();
/** Processes seen in an invocation's tree, for when their parent exits and they become orphans. */
const seenInTree = new Map<number, { startTicks: number; invocation: Invocation }>();

/** Notes that these processes were seen in the invocation's tree. */
export function rememberTree(invocation: Invocation, members: readonly ProcessInfo[]): void {
  for (const info of members) if (info.pid !== invocation.pid) seenInTree.set(info.pid, { startTicks: info.startTicks, invocation });
}

/** Forgets what was remembered of an ended invocation's tree. */
export function forgetTree(invocation: Invocation): void {
  for (const [pid, seen] of seenInTree) if (seen.invocation === invocation) seenInTree.delete(pid);
}

/** Whether `info` is an orphan alyx adopted: its child, but not one alyx started. */
export function isAdopted(info: ProcessInfo): boolean {
  return info.ppid === process.pid && !isOwnChild(info.pid);
}

/** Which invocation an adopted orphan belongs to; cached per process. */
export function attribute(info: ProcessInfo): Attribution {
  const cached = known.get(info.pid);
  if (cached && cached.startTicks === info.startTicks && (cached.owner || performance.now() - cached.at < UNOWNED_RECHECK_MS)) return cached;
  const attribution = attributeNow(info);
  known.set(info.pid, { ...attribution, startTicks: info.startTicks, at: performance.now() });
  return attribution;
}

function attributeNow(info: ProcessInfo): Attribution {
  const seen = seenInTree.get(info.pid);
  if (seen && seen.startTicks === info.startTicks) return { owner: seen.invocation, candidates: [] };
  // A session or group is joined only from inside it: one a function process leads is its own.
  const leader = runningLeader(info.sid) ?? runningLeader(info.pgid);
  if (leader) return { owner: leader, candidates: [] };
  const tag = readTag(info.pid);
  const tagged = tag ? invocationTagged(tag) : null;
  if (tagged) return { owner: tagged, candidates: [] };
  const holding = invocationHolding(openLinks(info.pid));
  if (holding) return { owner: holding, candidates: [] };
  const { invocations, complete } = runningAt(info.startTicks);
  if (complete && invocations.length === 1) return { owner: invocations[0], candidates: [] };
  return { owner: null, candidates: invocations };
}

/** Whether an orphan may be ended: it belongs to an ended invocation, or all that could own it have ended. */
export function isLeftOver(attribution: Attribution): boolean {
  if (attribution.owner) return !isRunning(attribution.owner);
  return attribution.candidates.length > 0 && attribution.candidates.every((candidate) => !isRunning(candidate));
}

/** alyx's children now: its own and the orphans it adopted. Orphans come to the main thread. */
function childPids(): number[] {
  try {
    return fs
      .readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'latin1')
      .split(' ')
      .filter((entry) => entry !== '')
      .map(Number);
  } catch {
    return [];
  }
}

const ending = new Set<number>();
/** Groups of adopted orphans listed with the watchdog, so that they die with alyx. */
const listedGroups = new Set<number>();

/**
 * Reaps adopted orphans that have exited, lists the live ones' groups with the watchdog, and
 * ends those that are left over. Returns how many groups it started ending.
 */
export function sweepOrphans(logger?: Logger): number {
  const addon = loadPosixAddon();
  let started = 0;
  const alive = new Set<number>();
  for (const pid of childPids()) {
    if (isOwnChild(pid)) continue;
    const info = readProcess(pid);
    if (!info) {
      // A zombie (or gone): only a process alyx did not start is waited for here.
      addon?.reap(pid);
      known.delete(pid);
      continue;
    }
    if (info.ppid !== process.pid) continue;
    alive.add(info.pgid);
    if (!listedGroups.has(info.pgid) && !runningLeader(info.pgid)) {
      listedGroups.add(info.pgid);
      watchdog.watchEscaped(info.pgid);
      logger?.debug({ pid, pgid: info.pgid }, 'an orphaned process is now ended with alyx if alyx dies');
    }
    const attribution = attribute(info);
    // Nobody's for sure, and only warm processes that may have started it still run.
    if (!attribution.owner && replaceIfAllWarm(attribution.candidates) > 0) {
      logger?.debug({ pid }, 'ended the warm processes that an orphaned process could have come from');
    }
    if (isLeftOver(attribution) && !ending.has(info.pgid)) {
      ending.add(info.pgid);
      started++;
      const pgid = info.pgid;
      logger?.warn({ pid, pgid }, 'ended an orphaned process group that a function left behind');
      void killGroup(pgid).finally(() => ending.delete(pgid));
    }
  }
  for (const pgid of listedGroups) {
    if (alive.has(pgid) || ending.has(pgid)) continue;
    listedGroups.delete(pgid);
    watchdog.releaseEscaped(pgid);
  }
  for (const pid of known.keys()) if (!readProcess(pid)) known.delete(pid);
  return started;
}

/** SIGKILLs every adopted orphan's group, synchronously: for alyx's own last moments. */
export function killAdoptedOrphans(): number {
  let killed = 0;
  for (const pid of childPids()) {
    if (isOwnChild(pid)) continue;
    const info = readProcess(pid);
    if (!info || info.ppid !== process.pid) continue;
    try {
      process.kill(-info.pgid, 'SIGKILL');
      killed++;
    } catch {
      try {
        process.kill(pid, 'SIGKILL');
        killed++;
      } catch {
        // gone
      }
    }
  }
  return killed;
}

/** The invocation tag in a process's environment, or null. */
function readTag(pid: number): string | null {
  let environ: string;
  try {
    environ = fs.readFileSync(`/proc/${pid}/environ`, 'latin1');
  } catch {
    return null;
  }
  const prefix = `${INVOCATION_VARIABLE}=`;
  const entry = environ.split('\0').find((item) => item.startsWith(prefix));
  return entry ? entry.slice(prefix.length) : null;
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
