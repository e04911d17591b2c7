import { EventEmitter } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { addonMissingReason, loadPosixAddon, type PosixAddon } from './addon';
import { owner } from './owner';

/** What alyx uses of a started function process: a ChildProcess is one, and so is a NativeProcess. */
export interface FunctionProcess extends EventEmitter {
  readonly pid?: number;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  /** What the process's fds 0-2 are, as /proc/<pid>/fd shows them, where known without reading /proc. */
  readonly childStdio?: readonly string[];
}

/**
 * `ALYX_POSIX_SPAWN=0` starts processes with child_process.spawn even where the addon is built
 * (the addon still makes alyx a subreaper: see subreaper.ts).
 */
const OPT_OUT_VARIABLE = 'ALYX_POSIX_SPAWN';

function loadAddon(): PosixAddon | null {
  return process.env[OPT_OUT_VARIABLE] === '0' ? null : loadPosixAddon();
}

/** How function processes are started here. */
export function processStartWay(): 'posix_spawn' | 'child_process.spawn' {
  return loadAddon() ? 'posix_spawn' : 'child_process.spawn';
}

/** The same, said to a person, with why when it is node's spawn (information, never an error). */
export function processStartNote(): string {
  if (loadAddon()) return 'function processes start with posix_spawn';
  const why =
    process.env[OPT_OUT_VARIABLE] === '0'
      ? `${OPT_OUT_VARIABLE}=0`
      : process.platform !== 'linux'
        ? `alyx's addon is for Linux (this is ${process.platform})`
        : `alyx's addon is not built for this machine (${addonMissingReason() ?? 'unknown'}); a C compiler at install builds it`;
  return `function processes start with child_process.spawn: ${why}`;
}

const SIGNAL_NAMES = new Map(Object.entries(os.constants.signals).map(([name, number]) => [number, name as NodeJS.Signals]));
/** After the output has closed, the exit status is looked for this soon, then less often. */
const EXIT_LOOKS_MS = [1, 2, 5, 10, 20, 50];

/**
 * A process started with posix_spawn, with what alyx uses of a ChildProcess: three sockets,
 * 'exit' (code, signal) once it is reaped, and 'close' once it has exited and both output
 * streams have closed.
 */
class NativeProcess extends EventEmitter implements FunctionProcess {
  readonly pid: number;
  readonly stdin: net.Socket;
  readonly stdout: net.Socket;
  readonly stderr: net.Socket;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  readonly #addon: PosixAddon;
  #exited = false;
  #closed = false;
  #openOutputs = 2;

  readonly childStdio: readonly string[];

  constructor(addon: PosixAddon, [pid, stdinFd, stdoutFd, stderrFd, ...inodes]: ReturnType<PosixAddon['spawn']>) {
    super();
    this.#addon = addon;
    this.pid = pid;
    this.childStdio = inodes.filter((inode) => typeof inode === 'number' && inode > 0).map((inode) => `socket:[${inode}]`);
    this.stdin = new net.Socket({ fd: stdinFd, readable: false, writable: true });
    this.stdout = new net.Socket({ fd: stdoutFd, readable: true, writable: false });
    this.stderr = new net.Socket({ fd: stderrFd, readable: true, writable: false });
    for (const output of [this.stdout, this.stderr]) output.once('close', () => this.#outputClosed());
  }

  /** Collects its exit status if it has exited. */
  reap(): void {
    if (this.#exited) return;
    const status = this.#addon.reap(this.pid);
    if (status === null) return;
    this.#exited = true;
    owner.reaped(this.pid);
    this.exitCode = status[0];
    this.signalCode = status[1] === null ? null : (SIGNAL_NAMES.get(status[1]) ?? null);
    this.emit('exit', this.exitCode, this.signalCode);
    this.#closeIfDone();
  }

  #outputClosed(): void {
    this.#openOutputs--;
    this.#closeIfDone();
    // Most programs close their output by exiting: the status follows within moments.
    if (this.#openOutputs === 0) this.#lookForExit(0);
  }

  /** Still running after the last of these looks: the owner's SIGCHLD listener and slow look take over. */
  #lookForExit(attempt: number): void {
    this.reap();
    if (this.#exited || attempt >= EXIT_LOOKS_MS.length) return;
    setTimeout(() => this.#lookForExit(attempt + 1), EXIT_LOOKS_MS[attempt]);
  }

  #closeIfDone(): void {
    if (this.#closed || !this.#exited || this.#openOutputs > 0) return;
    this.#closed = true;
    this.emit('close', this.exitCode, this.signalCode);
  }
}

/**
 * Starts `command` with posix_spawn (three socket pairs, a new session, default signal
 * handlers), or returns null where the addon is not available. Throws an Error with an errno
 * `code` when the program cannot be started.
 */
export function startNativeProcess(command: string, args: readonly string[], cwd: string, env: Readonly<Record<string, string>>): FunctionProcess | null {
  const posix = loadAddon();
  if (!posix) return null;
  const environment = Object.keys(env).map((key) => `${key}=${env[key]}`);
  const child = new NativeProcess(posix, posix.spawn(command, [command, ...args], environment, cwd));
  owner.startedNative(child);
  return child;
}
