import fs from 'node:fs';

/**
 * Each function process leads its own process group (spawned detached), so signalling the
 * group reaches its whole tree: the `go run` child, a shell's children, a forgotten `sleep &`.
 */

/** Sends `signal` to every process of the group; false when the group is already gone. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Pids of the group's live processes. Zombies do not count: a killed grandchild whose new
 * parent has not reaped it yet is gone for our purposes. Reads /proc (Linux); elsewhere it
 * answers [pgid] while the group exists.
 */
export function groupMembers(pgid: number): number[] {
  if (!signalGroup(pgid, 0)) return [];
  const members = scanGroup(pgid);
  return members ? members.map((member) => member.pid) : [pgid];
}

/** Resident memory of these processes together, in bytes. */
export function residentBytes(processes: readonly ProcessInfo[]): number {
  return processes.reduce((total, info) => total + info.residentPages, 0) * pageSize();
}

/** One live process as /proc/<pid>/stat shows it. */
export interface ProcessInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly pgid: number;
  readonly sid: number;
  /** Clock ticks after boot; a descendant never starts before its ancestor. */
  readonly startTicks: number;
  readonly residentPages: number;
}

/** The group's live members; null where there is no /proc. Its members were all made after its leader. */
function scanGroup(pgid: number): ProcessInfo[] | null {
  return scanProcesses(pgid, undefined, (info) => info.pgid === pgid);
}

/**
 * Every live (not zombie) process from /proc/<pid>/stat; null where there is no /proc. With
 * `madeSincePid`, only processes made since that one, which is all a function's tree can be:
 * pids grow until they wrap around, and after a wrap (or where the last pid cannot be read)
 * every process is read. That keeps alyx's per-invocation look at /proc small on a busy machine.
 * Pids that `skip` names are not read at all, and only what `keep` accepts is returned.
 */
export function scanProcesses(madeSincePid = 0, skip?: (pid: number) => boolean, keep: (info: ProcessInfo) => boolean = () => true): ProcessInfo[] | null {
  const last = madeSincePid > 0 ? lastPid() : -1;
  if (last === madeSincePid) {
    // No pid handed out since: that process is the only candidate, and listing /proc (the
    // larger part of an invocation's cost here) can be skipped.
    const only = readProcessIfThere(madeSincePid);
    return only && keep(only) ? [only] : [];
  }
  if (last > madeSincePid && last - madeSincePid <= PROBE_SPAN) return probeProcesses(madeSincePid, last, skip, keep);
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return null;
  }
  const floor = last >= madeSincePid ? madeSincePid : 0;
  const processes: ProcessInfo[] = [];
  for (const entry of entries) {
    if (entry.charCodeAt(0) < 48 || entry.charCodeAt(0) > 57) continue;
    const pid = Number(entry);
    if (pid < floor || skip?.(pid)) continue;
    const info = readProcess(pid);
    if (info && keep(info)) processes.push(info);
  }
  return processes;
}

/**
 * Few pids handed out since: trying each costs less than listing /proc. A thread's id is a pid
 * too, and /proc answers for it without listing it, so what answers is checked to be a process;
 * only once kept, as the threads of other function processes are many and of no interest.
 */
const PROBE_SPAN = 64;

function probeProcesses(from: number, to: number, skip: ((pid: number) => boolean) | undefined, keep: (info: ProcessInfo) => boolean): ProcessInfo[] {
  const processes: ProcessInfo[] = [];
  for (let pid = from; pid <= to; pid++) {
    if (skip?.(pid)) continue;
    const info = readProcessIfThere(pid);
    if (info && keep(info) && isProcess(pid)) processes.push(info);
  }
  return processes;
}

function isProcess(pid: number): boolean {
  try {
    return /^Tgid:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1] === String(pid);
  } catch {
    return false;
  }
}

/** ns_last_pid, kept open (one read a call); null where it cannot be read. */
let lastPidFile: number | null | undefined;
const lastPidBuffer = Buffer.alloc(16);

/** The pid the kernel handed out last; -1 when unknown. */
export function lastPid(): number {
  if (lastPidFile === null) return -1;
  try {
    lastPidFile ??= fs.openSync('/proc/sys/kernel/ns_last_pid', 'r');
    const length = fs.readSync(lastPidFile, lastPidBuffer, 0, lastPidBuffer.length, 0);
    const pid = Number(lastPidBuffer.toString('latin1', 0, length));
    return Number.isInteger(pid) && pid > 0 ? pid : -1;
  } catch {
    lastPidFile = null;
    return -1;
  }
}

/**
 * readProcess for a pid that is usually gone (the main process at its exit, a thread that has
 * ended): checked first, which costs no exception. A pid /proc has just listed is read directly.
 */
function readProcessIfThere(pid: number): ProcessInfo | null {
  return fs.existsSync(`/proc/${pid}/stat`) ? readProcess(pid) : null;
}

/** One process's stat; null when it is gone or a zombie. */
export function readProcess(pid: number): ProcessInfo | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields from the 3rd (state) on; the command name before them may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z') return null;
    return { pid, ppid: Number(fields[1]), pgid: Number(fields[2]), sid: Number(fields[3]), startTicks: Number(fields[19]), residentPages: Number(fields[21]) };
  } catch {
    return null; // the process ended while we looked
  }
}

/** USER_HZ: the unit of /proc/<pid>/stat's start time on every Linux architecture alyx runs on. */
const TICKS_PER_SECOND = 100;
let bootClock: { uptimeMs: number; at: number } | null | undefined;

/**
 * The start-time tick (as /proc/<pid>/stat counts it) a process started at `at`
 * (performance.now()) can have at the earliest, rounded down by a tick. Computed from
 * /proc/uptime, read once, so a spawn costs no read of the new process's stat. 0 where
 * there is no /proc.
 */
export function ticksSinceBoot(at: number): number {
  if (bootClock === undefined) {
    try {
      const uptimeSeconds = Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
      bootClock = Number.isFinite(uptimeSeconds) ? { uptimeMs: uptimeSeconds * 1000, at: performance.now() } : null;
    } catch {
      bootClock = null;
    }
  }
  if (!bootClock) return 0;
  return Math.max(0, Math.floor(((bootClock.uptimeMs + at - bootClock.at) * TICKS_PER_SECOND) / 1000) - 1);
}

let cachedPageSize: number | undefined;

/** The kernel's page size, from this process's own VmRSS (kB) and resident pages. */
function pageSize(): number {
  if (cachedPageSize === undefined) {
    cachedPageSize = 4096;
    try {
      const residentKb = Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1]);
      const residentPages = Number(fs.readFileSync('/proc/self/statm', 'utf8').split(' ')[1]);
      const estimate = (residentKb * 1024) / residentPages;
      if (Number.isFinite(estimate) && estimate > 0) cachedPageSize = 2 ** Math.round(Math.log2(estimate));
    } catch {
      // keep the common 4 KiB
    }
  }
  return cachedPageSize;
}

/**
 * Ends the whole group: SIGTERM, then SIGKILL once `graceMs` has passed. Resolves when the
 * group is gone or, at the latest, shortly after the SIGKILL.
 */
export async function killGroup(pgid: number, graceMs = 500): Promise<void> {
  if (!signalGroup(pgid, 'SIGTERM')) return;
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    await delay(20);
    if (groupMembers(pgid).length === 0) return;
  }
  signalGroup(pgid, 'SIGKILL');
  const killDeadline = Date.now() + 1000;
  while (groupMembers(pgid).length > 0 && Date.now() < killDeadline) await delay(10);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
