import fs from 'node:fs';
import type { SpawnOptions } from 'node:child_process';
import { ExecutionError } from '../errors';
import { endWholeTree } from './leftovers';
import { startNativeProcess, startNativeProcessAsync, type FunctionProcess } from './native-process';
import { owner } from './owner';
import { killGroup, ticksSinceBoot } from './process-group';

/** What to start for one invocation: fixed when the process starts. */
export interface SpawnSpec {
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  /** Cap on the resident memory of the whole process tree; 0 = none. V8 gets its heap limit from it at start. */
  readonly memoryLimitBytes?: number;
  /** `args` for a process started ahead of its request (a warm pool's), where they differ. */
  readonly warmArgs?: readonly string[];
}

/**
 * Starts a function's process in its own session and process group (their leader), with three
 * pipes: with posix_spawn where alyx's addon is built (it does not fork: see native-process.ts),
 * else with node's spawn. `command` is an absolute path resolved at discovery, so no PATH
 * search or shebang parsing is needed per invocation. The owner records it (and lists its group
 * with the watchdog) until `finishFunctionProcess`. `ahead`: started before its request exists
 * (a warm pool's), which runs `spec.warmArgs`. Its environment is `spec.env` as given, with the
 * heap cap: alyx adds nothing of its own to find it by. `payload`: its request, which
 * posix_spawn puts in stdin as it starts (the process then has no stdin stream); node's spawn
 * leaves it to the caller.
 * Throws when posix_spawn cannot start the program (node's spawn reports that as 'error'), and
 * an ExecutionError for an environment no process can be given.
 */
export function spawnFunctionProcess(spec: SpawnSpec, ahead = false, payload?: string): FunctionProcess {
  const start = prepareStart(spec, ahead);
  const child = startNativeProcess(spec.command, start.args, spec.cwd, start.env, payload) ?? spawnWithNode(spec, start.args, start.env);
  record(child, start.startedAt);
  return child;
}

/**
 * As spawnFunctionProcess, for a process given its request (`payload`) as it starts, but
 * resolves once it has started: posix_spawn's wait for the exec is spent on a thread of libuv's
 * pool, and this thread meanwhile serves the other invocations. The owner records the process
 * (and the watchdog lists its group) the moment its pid arrives. A process that came with no
 * stdin stream has its request already; otherwise (node's spawn) it is the caller's to write.
 * Rejects where spawnFunctionProcess throws.
 */
export async function startFunctionProcess(spec: SpawnSpec, payload: string): Promise<FunctionProcess> {
  const start = prepareStart(spec, false);
  const starting = startNativeProcessAsync(spec.command, start.args, spec.cwd, start.env, payload, (child) => record(child, start.startedAt));
  if (starting) return starting;
  const child = spawnWithNode(spec, start.args, start.env);
  record(child, start.startedAt);
  return child;
}

/** The environment and arguments a start gives the process, and when it began. Throws as spawnFunctionProcess. */
function prepareStart(spec: SpawnSpec, ahead: boolean): { readonly env: Readonly<Record<string, string>>; readonly args: readonly string[]; readonly startedAt: number } {
  const startedAt = performance.now();
  const env = withHeapCap(spec.env, spec.memoryLimitBytes ?? 0);
  const args = ahead && spec.warmArgs ? spec.warmArgs : spec.args;
  refuseUnspawnable(spec.command, args, env);
  return { env, args, startedAt };
}

/** The owner records a process just started (it has a pid unless node's spawn failed, which it reports as 'error'). */
function record(child: FunctionProcess, startedAt: number): void {
  if (child.pid !== undefined) owner.started({ pid: child.pid, startTicks: ticksSinceBoot(startedAt), stdio: child.childStdio ?? stdioLinks(child.pid) });
}

/**
 * Ends a function process that has not been given a request (a warm one), and everything it
 * started wherever that went, as an invocation's end does.
 */
export async function endFunctionProcess(child: FunctionProcess): Promise<void> {
  if (child.pid === undefined) return;
  const invocation = owner.runningLeader(child.pid);
  if (invocation) await endWholeTree(invocation);
  else await killGroup(child.pid);
  owner.finished(child.pid);
}

function spawnWithNode(spec: SpawnSpec, args: readonly string[], env: Readonly<Record<string, string>>): FunctionProcess {
  const options: SpawnOptions = { cwd: spec.cwd, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true };
  return owner.startChild(spec.command, args, options);
}

/** The stdio sockets of a process alyx has just started, as /proc shows them; [] where it cannot. */
function stdioLinks(pid: number): string[] {
  if (process.platform !== 'linux') return [];
  const links: string[] = [];
  for (let fd = 0; fd <= 2; fd++) {
    try {
      links.push(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // gone already, or the fd was closed
    }
  }
  return links.filter((link) => link.startsWith('socket:') || link.startsWith('pipe:'));
}

/**
 * A process's arguments and environment are C strings: a NUL byte ends one. posix_spawn would
 * cut such a value there and node's spawn refuses it; alyx refuses it the same way on both
 * paths, naming what holds it and never its value.
 */
export function refuseUnspawnable(command: string, args: readonly string[], env: Readonly<Record<string, string>>): void {
  for (const key of Object.keys(env)) {
    if (key.includes('\0')) {
      throw new ExecutionError(
        `An environment variable name of the function, ${JSON.stringify(key)}, holds a NUL byte, which no process environment can carry: rename it in the manifest's env, functions.env or the project's .env.`,
        { variable: key },
      );
    }
    if (env[key].includes('\0')) {
      throw new ExecutionError(
        `The function's environment variable ${key} holds a NUL byte, which no process environment can carry: remove it from the value in the manifest's env, functions.env or the project's .env.`,
        { variable: key },
      );
    }
  }
  for (const arg of [command, ...args]) {
    if (arg.includes('\0')) throw new ExecutionError(`The function's command line holds a NUL byte (${JSON.stringify(arg.replace(/\0/g, '\\0'))}): rename the file or folder.`);
  }
}

/**
 * The memory cap is enforced by sampling the process tree's resident memory. Between two
 * samples a JavaScript function could still grow its heap fast, so V8 itself also gets a heap
 * limit of the cap's size, through the variables node and deno read at start (inherited by every
 * process the function starts): its heap alone can never pass the cap.
 */

const HEAP_FLAG = '--max-old-space-size';
/** The variables that pass V8 flags, and how each separates them. */
const V8_FLAG_VARIABLES: ReadonlyArray<{ name: string; separator: string }> = [
  { name: 'NODE_OPTIONS', separator: ' ' },
  { name: 'DENO_V8_FLAGS', separator: ',' },
];
/** Below this V8 cannot even start its own runtime. */
const MIN_HEAP_MB = 16;
/** What node and deno write to stderr when the heap limit stops them. */
const HEAP_EXHAUSTED = /JavaScript heap out of memory|Reached heap limit/;

/** The environment with the heap limit added to each V8 flag variable that does not set one already; unchanged without a cap. */
export function withHeapCap(env: Readonly<Record<string, string>>, memoryLimitBytes: number): Readonly<Record<string, string>> {
  if (memoryLimitBytes <= 0) return env;
  const flag = `${HEAP_FLAG}=${Math.max(MIN_HEAP_MB, Math.floor(memoryLimitBytes / 1048576))}`;
  const capped = { ...env };
  for (const { name, separator } of V8_FLAG_VARIABLES) {
    const current = env[name] ?? '';
    if (!current.includes(HEAP_FLAG)) capped[name] = current === '' ? flag : `${current}${separator}${flag}`;
  }
  return capped;
}

/** Whether a process's last stderr says the heap limit ended it. */
export function heapWasExhausted(stderrTail: string): boolean {
  return HEAP_EXHAUSTED.test(stderrTail);
}
