import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { signalGroup } from './process-group';

/**
 * The process groups alyx is responsible for (running functions, warm processes, and the
 * groups of orphans it adopted) are also listed with a watchdog: a small `sh`, in its own
 * session, that reads "+pgid" and "-pgid" lines on stdin. When alyx dies without ending them
 * (SIGKILL, a crash of node itself), its end of that pipe closes, and the watchdog stops every
 * group still listed, then every process whose parent it has already stopped, until a pass over
 * /proc finds no more (stopped first, so that nothing forks meanwhile), and SIGKILLs them all.
 * On every exit alyx gets to run code for, it SIGKILLs them itself (below). Where there is no
 * sh (or on Windows) nothing more is watched.
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

class Watchdog {
  /** Groups led by a function process alyx started. */
  readonly #groups = new Set<number>();
  /** Other groups to end with alyx: an adopted orphan's. */
  readonly #escaped = new Set<number>();
  #process: ChildProcess | null = null;
  #starts = 0;
  #pending = '';
  #flushScheduled = false;

  watch(pgid: number): void {
    this.#groups.add(pgid);
    this.#send(`+${pgid}\n`);
  }

  release(pgid: number): void {
    if (this.#groups.delete(pgid)) this.#send(`-${pgid}\n`);
  }

  /** Lists a group that is not a function process's own, to be ended with alyx all the same. */
  watchEscaped(pgid: number): void {
    if (this.#groups.has(pgid) || this.#escaped.has(pgid)) return;
    this.#escaped.add(pgid);
    this.#send(`+${pgid}\n`);
  }

  releaseEscaped(pgid: number): void {
    if (this.#escaped.delete(pgid)) this.#send(`-${pgid}\n`);
  }

  /** SIGKILLs every group still listed, synchronously: for alyx's own last moments. */
  killAll(): void {
    for (const pgid of [...this.#groups, ...this.#escaped]) signalGroup(pgid, 'SIGKILL');
  }

  /** Whether `pgid` is a group alyx started and has not ended yet. */
  isWatching(pgid: number): boolean {
    return this.#groups.has(pgid);
  }

  /** Lines of one turn of the event loop go out in one write. */
  #send(line: string): void {
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
    if (process.platform === 'win32' || this.#starts >= MAX_STARTS || this.#groups.size + this.#escaped.size === 0) return;
    this.#starts++;
    let watchdog: ChildProcess;
    try {
      // Its environment is readable by every process of alyx's user, functions included: it gets none of alyx's.
      watchdog = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT, WATCHDOG_NAME, String(process.pid)], { stdio: ['pipe', 'ignore', 'ignore'], detached: true, env: WATCHDOG_ENV });
    } catch {
      this.#starts = MAX_STARTS;
      return;
    }
    watchdog.on('error', () => {
      // No /bin/sh: alyx's exit handlers are all there is.
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
    watchdog.stdin?.write([...this.#groups, ...this.#escaped].map((pgid) => `+${pgid}\n`).join(''));
  }
}

export const watchdog = new Watchdog();

process.on('exit', () => watchdog.killAll());
