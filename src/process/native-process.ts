import { EventEmitter } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { addonMissingReason, loadPosixAddon, type PosixAddon } from './addon';
import { owner } from './owner';

/** What alyx uses of a started function process: a ChildProcess is one, and so is a NativeProcess. */
export interface FunctionProcess extends EventEmitter {
  readonly pid?: number;
  /** null for a process given its request as it started (startNativeProcess with an input, startNativeProcessAsync). */
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
  readonly stdin: net.Socket | null;
  readonly stdout: net.Socket;
  readonly stderr: net.Socket;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  readonly #addon: PosixAddon;
  #exited = false;
  #closed = false;
  #openOutputs = 2;

  readonly childStdio: readonly string[];

  constructor(addon: PosixAddon, pid: number, [stdin, stdout, stderr]: Stdio, inodes: readonly (number | undefined)[]) {
    super();
    this.#addon = addon;
    this.pid = pid;
    this.childStdio = inodes.filter((inode) => typeof inode === 'number' && inode > 0).map((inode) => `socket:[${inode}]`);
    this.stdin = stdin;
    this.stdout = stdout;
    this.stderr = stderr;
    for (const output of [this.stdout, this.stderr]) {
      // One that closed while the process started off this thread (it wrote nothing and
      // exited) counts once the caller, who has the process only after this, listens for its
      // events: its exit must not be emitted before anyone listens.
      if (output.closed) setImmediate(() => this.#outputClosed());
      else output.once('close', () => this.#outputClosed());
    }
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

type Stdio = [net.Socket | null, net.Socket, net.Socket];

const writingEnd = (fd: number): net.Socket => new net.Socket({ fd, readable: false, writable: true });
const readingEnd = (fd: number): net.Socket => new net.Socket({ fd, readable: true, writable: false });

function environmentOf(env: Readonly<Record<string, string>>): string[] {
  return Object.keys(env).map((key) => `${key}=${env[key]}`);
}

/**
 * Starts `command` with posix_spawn (three socket pairs, a new session, default signal
 * handlers), or returns null where the addon is not available. Throws an Error with an errno
 * `code` when the program cannot be started. Given its request (`input`), the process has it,
 * and its end, in stdin as it starts, and no stdin stream (a request larger than the socket
 * takes is written on from here).
 */
export function startNativeProcess(command: string, args: readonly string[], cwd: string, env: Readonly<Record<string, string>>, input?: string): FunctionProcess | null {
  const posix = loadAddon();
  if (!posix) return null;
  const [pid, stdinFd, stdoutFd, stderrFd, ...rest] = posix.spawn(command, [command, ...args], environmentOf(env), cwd, input);
  let stdin: net.Socket | null = null;
  if (input === undefined) stdin = writingEnd(stdinFd);
  else if (stdinFd >= 0) writeRest(writingEnd(stdinFd), input, rest[3] ?? 0);
  const child = new NativeProcess(posix, pid, [stdin, readingEnd(stdoutFd), readingEnd(stderrFd)], rest.slice(0, 3));
  owner.startedNative(child);
  return child;
}

/**
 * The same start, given its request, but the wait until the program has exec'd (glibc's
 * posix_spawn holds the calling thread until then) is spent on a thread of libuv's pool rather
 * than this one. Resolves once the process has its pid, which the owner has from that moment
 * (`onPid`, before anything else runs); rejects as startNativeProcess throws. The owner counts
 * the start as pending until then, for its exit handler. null where the addon is not available.
 */
export function startNativeProcessAsync(
  command: string,
  args: readonly string[],
  cwd: string,
  env: Readonly<Record<string, string>>,
  input: string,
  onPid: (child: FunctionProcess) => void,
): Promise<FunctionProcess> | null {
  const posix = loadAddon();
  if (!posix) return null;
  const [started, , stdoutFd, stderrFd, ...inodes] = posix.start(command, [command, ...args], environmentOf(env), cwd, input);
  const settled = owner.startingOffThread();
  // Made while the process starts.
  const outputs = [readingEnd(stdoutFd), readingEnd(stderrFd)] as const;
  return started.then(
    ([pid, stdinFd, written]) => {
      const child = new NativeProcess(posix, pid, [null, ...outputs], inodes.slice(0, 3));
      owner.startedNative(child);
      onPid(child);
      settled();
      if (stdinFd >= 0) writeRest(writingEnd(stdinFd), input, written);
      return child;
    },
    (error: unknown) => {
      settled();
      for (const socket of outputs) socket.destroy();
      // The addon's Error (of node's own realm, so no instanceof); undefined only if Node-API failed.
      throw typeof error === 'object' && error !== null ? error : Object.assign(new Error('the process could not be started'), { code: 'ERR_NAPI' });
    },
  );
}

/** The part of the request stdin's socket did not take at the start, and its end. */
function writeRest(stdin: net.Socket, input: string, written: number): void {
  stdin.on('error', () => {
    // EPIPE: the function exited or closed stdin without reading its request. Its output decides.
  });
  stdin.end(Buffer.from(input).subarray(written));
}
