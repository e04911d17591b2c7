import type { ChildProcess, SpawnOptions } from 'node:child_process';
import type { Socket } from 'node:net';
import { scanProcesses, signalGroup, type ProcessInfo } from './process-group';

/**
 * The process groups alyx is responsible for (running functions, warm processes, and the
 * groups of orphans it adopted) are also listed with a watchdog: a small `sh`, in its own
 * session, that reads "+pgid" and "-pgid" lines on stdin. When alyx dies without ending them
 * (SIGKILL, a crash of node itself), its end of that pipe closes, and the watchdog stops every
 * group still listed, then every process whose parent it has already stopped, until a pass over
 * /proc finds no more (stopped first, so that nothing forks meanwhile), and SIGKILLs them all.
 * On every exit alyx gets to run code for, it SIGKILLs them itself (see owner.ts). Where there
 * is no sh (or on Windows) nothing more is watched. The list is the owner's; this only passes it on.
 */
export const WATCHDOG_SCRIPT = `trap '' INT TERM HUP QUIT
groups=' '
while IFS= read -r line; do
  id=\${line#?}
  case $line in
    +*) groups="$groups$id " ;;
    -*) case $groups in *" $id "*) groups="\${groups%% $id *} \${groups#* $id }" ;; esac ;;
  esac
done
for id in $groups; do kill -s STOP -- "-$id" 2>/dev/null; done
found=' '
more=1
pass=0
while [ $more = 1 ] && [ $pass -lt 16 ]; do
  more=0
  pass=$((pass + 1))
  for stat in /proc/[0-9]*/stat; do
    { IFS= read -r fields < "$stat"; } 2>/dev/null || continue
    pid=\${stat#/proc/}
    pid=\${pid%/stat}
    case $found in *" $pid "*) continue ;; esac
    set -- \${fields##*) }
    [ "$1" = Z ] && continue
    case "$groups$found" in
      *" $2 "* | *" $3 "*) kill -s STOP "$pid" 2>/dev/null; found="$found$pid "; more=1 ;;
    esac
  done
done
for id in $groups; do kill -s KILL -- "-$id" 2>/dev/null; done
for pid in $found; do kill -s KILL "$pid" 2>/dev/null; done`;

/** The marker in the watchdog's command line, followed by alyx's pid. */
export const WATCHDOG_NAME = 'alyx-watchdog';
/** The script needs only sh's builtins. */
const WATCHDOG_ENV = { PATH: '/usr/bin:/bin' };
/** A watchdog that keeps dying is not started again. */
const MAX_STARTS = 3;

/** How the watchdog is started: through the owner, which records it as alyx's own child. */
type StartChild = (command: string, args: readonly string[], options: SpawnOptions) => ChildProcess;

/** The watchdog process, told of each group as it is listed or released. */
export class Watchdog {
  /** Every group listed now: what a watchdog started (or started again) is given. */
  readonly #listed: () => readonly number[];
  readonly #startChild: StartChild;
  #process: ChildProcess | null = null;
  #starts = 0;
  #pending = '';
  #flushScheduled = false;
  #enabled = false;

  constructor(listed: () => readonly number[], startChild: StartChild) {
    this.#listed = listed;
    this.#startChild = startChild;
  }

  /** From now on, a watchdog runs whenever a group is listed (until then the lines are dropped: it gets the whole list when it starts). */
  enable(): void {
    this.#enabled = true;
    if (!this.#process) this.#start();
  }

  add(pgid: number): void {
    this.#send(`+${pgid}\n`);
  }

  remove(pgid: number): void {
    this.#send(`-${pgid}\n`);
  }

  /** Lines of one turn of the event loop go out in one write. */
  #send(line: string): void {
    if (!this.#enabled) return;
    this.#pending += line;
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      const lines = this.#pending;
      this.#pending = '';
      // A watchdog started now is given the whole list instead.
      if (this.#process) this.#process.stdin?.write(lines);
      else this.#start();
    });
  }

  #start(): void {
    const listed = this.#listed();
    if (process.platform === 'win32' || this.#starts >= MAX_STARTS || listed.length === 0) return;
    this.#starts++;
    let watchdog: ChildProcess;
    try {
      // Its environment is readable by every process of alyx's user, functions included: it gets none of alyx's.
      watchdog = this.#startChild('/bin/sh', ['-c', WATCHDOG_SCRIPT, WATCHDOG_NAME, String(process.pid)], { stdio: ['pipe', 'ignore', 'ignore'], detached: true, env: WATCHDOG_ENV });
    } catch {
      this.#starts = MAX_STARTS;
      return;
    }
    watchdog.on('error', () => {
      // No /bin/sh: alyx's exit handler is all there is.
      this.#starts = MAX_STARTS;
      if (this.#process === watchdog) this.#process = null;
    });
    watchdog.on('exit', () => {
      if (this.#process === watchdog) this.#process = null;
    });
    watchdog.stdin?.on('error', () => undefined);
    // It must not keep alyx running, and it ends by itself when alyx does.
    watchdog.unref();
    (watchdog.stdin as Socket | null)?.unref();
    this.#process = watchdog;
    watchdog.stdin?.write(listed.map((pgid) => `+${pgid}\n`).join(''));
  }
}

/**
 * What the watchdog does, done by alyx itself on any exit it runs code for, synchronously:
 * stops the groups that `leaders` lead, `groups`, and the groups of `roots`; then SIGKILLs
 * them, every process that descends from them or from `roots` (found by parent pids, in one
 * pass over /proc while nothing in them can fork), and the groups of those. With nothing to
 * end, /proc is not read.
 */
export function killTrees(leaders: readonly number[], roots: readonly ProcessInfo[], groups: readonly number[]): void {
  if (leaders.length + roots.length + groups.length === 0) return;
  for (const pgid of [...leaders, ...roots.map((root) => root.pgid), ...groups]) signalGroup(pgid, 'SIGSTOP');
  const table = scanProcesses() ?? [];
  const ending = new Set([...leaders, ...groups]);
  const children = new Map<number, ProcessInfo[]>();
  for (const info of table) {
    const siblings = children.get(info.ppid);
    if (siblings) siblings.push(info);
    else children.set(info.ppid, [info]);
  }
  const queue = [...roots, ...table.filter((info) => ending.has(info.pgid))];
  const found = new Set<number>();
  while (queue.length > 0) {
    const info = queue.pop() as ProcessInfo;
    if (found.has(info.pid)) continue;
    found.add(info.pid);
    if (info.pgid > 1 && info.pgid !== process.pid) ending.add(info.pgid);
    queue.push(...(children.get(info.pid) ?? []));
  }
  for (const pgid of ending) signalGroup(pgid, 'SIGKILL');
  for (const pid of found) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}
