import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import crossSpawn from 'cross-spawn';
import type { Logger } from '../logger';
import { loadPosixAddon } from './addon';
import { Orphans } from './orphans';
import { ticksSinceBoot, type ProcessInfo } from './process-group';
import { killTrees, Watchdog } from './watchdog';

/**
 * The one record of the processes alyx is responsible for: the function processes it started
 * (running invocations and warm processes) and those it ended lately, the other children it
 * started itself (builds, the watchdog), and the orphans it adopted as a subreaper. Everything
 * that finds, attributes or ends a process asks it, and it keeps the watchdog's list. Nothing
 * is hooked into node until `install()` (the CLI's, before it runs a function).
 */

/** A function process: the leader of its own group and session, when it started, and its stdio. */
export interface Invocation {
  readonly pid: number;
  readonly startTicks: number;
  /** What /proc/<pid>/fd/0..2 linked to at its start: whoever holds one of these is the invocation's. */
  readonly stdio?: readonly string[];
}

/** A child node does not reap: reap() collects its exit status if it has exited, and calls reaped(). */
export interface Reapable {
  readonly pid: number;
  reap(): void;
}

interface FunctionRecord {
  readonly invocation: Invocation;
  finishedTicks: number | null;
  /** While it waits, warm, for a request: ends and replaces it. */
  replace: (() => void) | null;
  /** Processes seen in its tree (pid -> start tick), for when their parent exits and they become orphans. */
  readonly seen: Map<number, number>;
}

/**
 * Ended function processes are remembered this long, and at most this many (a look through
 * them is a loop); an orphan started before the oldest is not attributed by time.
 */
const REMEMBER_ENDED_MS = 10 * 60_000;
const REMEMBER_ENDED_MAX = 2000;
/** How often exited children and orphans are looked for when no SIGCHLD says so (one short read). */
const SLOW_LOOK_MS = 100;
/**
 * After a SIGCHLD, how soon orphans are looked for: every function process's exit sends one,
 * and a look per exit would cost more than a zombie waiting this long does.
 */
const SIGCHLD_SWEEP_MS = 20;

export class ProcessOwner {
  readonly #running = new Map<number, FunctionRecord>();
  readonly #ended: FunctionRecord[] = [];
  /** The earliest tick from which the records are complete. */
  #completeSinceTicks = 0;
  /**
   * Children alyx started that are not reaped yet, with how to reap one that node does not
   * (posix_spawn's). Only a child missing here may alyx wait for: waiting for one of node's
   * would take its exit status from node, whose 'exit' would then never come.
   */
  readonly #children = new Map<number, Reapable | null>();
  readonly orphans = new Orphans(this);
  readonly #watchdog = new Watchdog(
    () => [...this.#running.keys(), ...this.orphans.listedGroups()],
    (command, args, options) => this.startChild(command, args, options),
  );
  /** Starts under way on a thread of libuv's pool whose pid has not reached JavaScript yet. */
  #startingOffThread = 0;
  #installed = false;
  #subreaper = false;
  #onSigchld = false;
  #slowLook: NodeJS.Timeout | null = null;
  #sweepScheduled = false;
  #logger: Logger | undefined;

  /**
   * Hooks alyx's process: ends everything listed on any exit alyx runs code for, and through
   * the watchdog on a SIGKILL of alyx; reaps its children on SIGCHLD; and makes it a child
   * subreaper where the addon is built (Linux), so that what a function leaves behind becomes
   * alyx's child instead of init's, whatever it did to its environment or session. Call once,
   * before any function process starts.
   * `ALYX_SUBREAPER=0` leaves the subreaper out, as where the addon is not built.
   */
  install(env: NodeJS.ProcessEnv = process.env): void {
    if (this.#installed) return;
    this.#installed = true;
    process.on('exit', () => this.killEverything());
    this.#listenForChildren();
    this.#watchdog.enable();
    const addon = env.ALYX_SUBREAPER === '0' ? null : loadPosixAddon();
    try {
      this.#subreaper = addon?.subreaper() === true;
    } catch {
      this.#subreaper = false;
    }
    if (this.#subreaper) setInterval(() => this.#sweep(), SLOW_LOOK_MS).unref();
  }

  /** Where to say what alyx did with the orphans it adopted. */
  reportTo(logger: Logger): void {
    this.#logger = logger;
  }

  /** Whether alyx adopts what its function processes leave behind. */
  get isSubreaper(): boolean {
    return this.#subreaper;
  }

  // Function processes.

  /** Records a function process alyx has just started; its group is listed with the watchdog. */
  started(invocation: Invocation): void {
    if (this.#completeSinceTicks === 0) this.#completeSinceTicks = invocation.startTicks;
    this.#running.set(invocation.pid, { invocation, finishedTicks: null, replace: null, seen: new Map() });
    this.#watchdog.add(invocation.pid);
  }

  /** Records that a function process and what it left are ended. */
  finished(pid: number): void {
    const record = this.#running.get(pid);
    if (!record) return;
    this.#running.delete(pid);
    this.#watchdog.remove(pid);
    record.seen.clear();
    // A tick later than now: the finish is never placed before a process it may have started.
    record.finishedTicks = ticksSinceBoot(performance.now()) + 2;
    this.#ended.push(record);
    const horizon = ticksSinceBoot(performance.now() - REMEMBER_ENDED_MS);
    while (this.#ended.length > REMEMBER_ENDED_MAX || (this.#ended.length > 0 && (this.#ended[0].finishedTicks ?? 0) < horizon)) {
      this.#completeSinceTicks = Math.max(this.#completeSinceTicks, this.#ended.shift()?.finishedTicks ?? 0);
    }
  }

  /** The running function process whose group `pid` leads, or null. */
  runningLeader(pid: number): Invocation | null {
    return this.#running.get(pid)?.invocation ?? null;
  }

  /** Every function process alyx has started and not ended: running invocations and warm processes. */
  runningInvocations(): Invocation[] {
    return [...this.#running.values()].map((record) => record.invocation);
  }

  /** Whether the invocation is still running (or waiting warm). */
  isRunning(invocation: Invocation): boolean {
    return this.#running.get(invocation.pid)?.invocation === invocation;
  }

  /** Notes that these processes were seen in the invocation's tree. */
  sawTree(invocation: Invocation, members: readonly ProcessInfo[]): void {
    const seen = this.#running.get(invocation.pid)?.seen;
    if (seen) for (const info of members) if (info.pid !== invocation.pid) seen.set(info.pid, info.startTicks);
  }

  /** The running invocation in whose tree this process was seen. */
  seenIn(info: ProcessInfo): Invocation | null {
    for (const record of this.#running.values()) if (record.seen.get(info.pid) === info.startTicks) return record.invocation;
    return null;
  }

  /** The invocation, running or recently ended, whose stdio includes one of `links`. */
  invocationHolding(links: readonly string[]): Invocation | null {
    if (links.length === 0) return null;
    for (const record of [...this.#running.values(), ...this.#ended]) if (record.invocation.stdio?.some((link) => links.includes(link))) return record.invocation;
    return null;
  }

  /**
   * Invocations that were running when a process started at `startTicks` did: one of them started
   * it. `complete` is false when the records no longer reach back that far.
   */
  runningAt(startTicks: number): { invocations: Invocation[]; complete: boolean } {
    const invocations: Invocation[] = [];
    for (const record of [...this.#running.values(), ...this.#ended]) {
      if (record.invocation.startTicks <= startTicks && (record.finishedTicks === null || record.finishedTicks >= startTicks)) invocations.push(record.invocation);
    }
    return { invocations, complete: this.#completeSinceTicks > 0 && startTicks >= this.#completeSinceTicks };
  }

  /** Notes that a function process waits, warm, for a request; `replace` ends it and starts another. */
  markWarm(pid: number, replace: () => void): void {
    const record = this.#running.get(pid);
    if (record) record.replace = replace;
  }

  /** It was given a request, or is being ended. */
  noLongerWarm(pid: number): void {
    const record = this.#running.get(pid);
    if (record) record.replace = null;
  }

  /**
   * Ends and replaces the warm processes among `invocations`, if every one still running is
   * warm; returns how many. Those are what an orphan nobody can attribute is waiting for.
   */
  replaceIfAllWarm(invocations: readonly Invocation[]): number {
    const records = invocations.filter((invocation) => this.isRunning(invocation)).map((invocation) => this.#running.get(invocation.pid) as FunctionRecord);
    if (records.length === 0 || records.some((record) => record.replace === null)) return 0;
    for (const record of records) record.replace?.();
    return records.length;
  }

  // Adopted orphans' groups, listed with the watchdog so that they die with alyx.

  /** Lists a group that no function process leads, to be ended with alyx all the same. */
  listGroup(pgid: number): void {
    if (!this.#running.has(pgid)) this.#watchdog.add(pgid);
  }

  unlistGroup(pgid: number): void {
    if (!this.#running.has(pgid)) this.#watchdog.remove(pgid);
  }

  // alyx's own children.

  /**
   * Starts a program with child_process (cross-spawn on Windows) and records it as alyx's own
   * until node has reaped it. Every child_process start of alyx's goes through here.
   */
  startChild(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
    const child = process.platform === 'win32' ? crossSpawn(command, [...args], options) : spawn(command, args, options);
    const pid = child.pid;
    if (pid !== undefined) {
      this.#children.set(pid, null);
      // 'exit' comes once libuv has reaped it: the pid may then be anyone's.
      child.once('exit', () => this.#children.delete(pid));
    }
    return child;
  }

  /**
   * Notes a start under way off the JavaScript thread (native-process's startNativeProcessAsync);
   * the function returned says it has settled, its pid recorded (`started`) or no process made.
   * Until then its process is one nothing else here knows of: `killEverything` finds it.
   */
  startingOffThread(): () => void {
    this.#startingOffThread++;
    let settled = false;
    return () => {
      if (settled) return;
      settled = true;
      this.#startingOffThread--;
    };
  }

  /** Records a child started without node (posix_spawn), which it reaps when told to. */
  startedNative(child: Reapable): void {
    this.#children.set(child.pid, child);
    this.#listenForChildren();
  }

  /** A child started without node has been reaped. */
  reaped(pid: number): void {
    this.#children.delete(pid);
  }

  /** Whether alyx started `pid` itself and has not reaped it yet. */
  isOwnChild(pid: number): boolean {
    return this.#children.has(pid);
  }

  /**
   * SIGKILLs every running function's tree, wherever it went, and every orphan alyx adopted,
   * synchronously: for alyx's own last moments. Returns how many invocations (warm processes
   * aside) it ended.
   */
  killEverything(): number {
    // Started off this thread, pid not yet here: such a process is a child of a pool thread.
    const unannounced = this.#startingOffThread > 0 ? this.orphans.poolThreadsChildren() : [];
    // One that has already left alyx's group (it is its own leader, as every function process
    // becomes before it runs) is ended as a group; one still in alyx's group has not exec'd, and
    // is ended alone below.
    const leaders = unannounced.filter((info) => info.pgid === info.pid).map((info) => info.pid);
    killTrees([...this.#running.keys(), ...leaders], this.#subreaper ? this.orphans.adopted() : [], this.orphans.listedGroups());
    for (const info of unannounced) {
      try {
        process.kill(info.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    return [...this.#running.values()].filter((record) => record.replace === null).length;
  }

  /** One SIGCHLD listener, and a slow look that does not depend on signals reaching it. */
  #listenForChildren(): void {
    if (!this.#onSigchld) {
      this.#onSigchld = true;
      process.on('SIGCHLD', () => {
        this.#reapExited();
        // An orphan that exits is a zombie child of alyx until it is reaped.
        if (this.#subreaper && !this.#sweepScheduled) {
          this.#sweepScheduled = true;
          setTimeout(() => this.#sweep(), SIGCHLD_SWEEP_MS).unref();
        }
      });
    }
    if (!this.#slowLook) {
      this.#slowLook = setInterval(() => this.#reapExited(), SLOW_LOOK_MS);
      this.#slowLook.unref();
    }
  }

  #reapExited(): void {
    let waiting = false;
    for (const child of this.#children.values()) {
      if (!child) continue;
      child.reap();
      waiting = true;
    }
    if (!waiting && this.#slowLook) {
      clearInterval(this.#slowLook);
      this.#slowLook = null;
    }
  }

  #sweep(): void {
    this.#sweepScheduled = false;
    this.orphans.sweep(this.#logger);
  }
}

/** alyx's one owner of the processes it starts. */
export const owner = new ProcessOwner();
