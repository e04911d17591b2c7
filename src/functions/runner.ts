import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import crossSpawn from 'cross-spawn';
import { AlyxError, ExecutionError, MemoryLimitExceededError, OutputTooLargeError, TimeoutError } from '../errors';
import type { Logger } from '../logger';
import { parseStdout, type FunctionResponse } from './protocol';
import { groupMembers, groupResidentBytes, killGroup, signalGroup } from './process-group';

/** What to start for one invocation: fixed when the process starts. */
export interface SpawnSpec {
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
}

/** One process to run under the protocol, with its limits. */
export interface RunSpec extends SpawnSpec {
  /** The request document written to stdin, followed by EOF. */
  readonly payload: string;
  readonly timeoutMs: number;
  readonly maxOutputBytes: number;
  /** Cap on the resident memory of the whole process tree; 0 = none. */
  readonly memoryLimitBytes?: number;
  /** Aborting ends the process tree; an AlyxError given as the reason becomes the result. */
  readonly signal?: AbortSignal;
  /** A child logger that already carries the function name and request id. */
  readonly logger: Logger;
}

export type RunResult =
  | { readonly ok: true; readonly response: FunctionResponse; readonly stderrTail: string }
  | { readonly ok: false; readonly error: AlyxError; readonly stderrTail: string };

const STDERR_TAIL_BYTES = 4096;

/** Process groups of the invocations running now, so an abrupt exit of alyx can still end them. */
const runningGroups = new Set<number>();

/** SIGKILLs every running function's process group, synchronously: for alyx's own last moments. */
export function killAllRunningGroups(): number {
  for (const pgid of runningGroups) signalGroup(pgid, 'SIGKILL');
  return runningGroups.size;
}
process.on('exit', killAllRunningGroups);

const STDERR_MAX_LINE = 64 * 1024;
/** How often a capped invocation's tree memory is sampled. */
const MEMORY_SAMPLE_MS = 50;
/** How long stdout may stay open after the main process exited (a daemonised grandchild holding it). */
const DRAIN_AFTER_EXIT_MS = 2000;

/**
 * Starts a function's process in its own process group (its leader), with three pipes.
 * `command` is an absolute path resolved at discovery, so node's own spawn is enough: no
 * PATH search or shebang parsing per invocation (cross-spawn only adds those on Windows).
 */
export function spawnFunctionProcess(spec: SpawnSpec): ChildProcess {
  if (process.platform === 'win32') return crossSpawn(spec.command, [...spec.args], spawnOptions(spec));
  return spawn(spec.command, spec.args, spawnOptions(spec));
}

function spawnOptions(spec: SpawnSpec): SpawnOptions {
  return { cwd: spec.cwd, env: spec.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true };
}

/**
 * Spawns the process (or takes `started`, one a warm pool spawned with the same spec), writes
 * the request, reads stdout whole (up to the cap), logs stderr line by line, and ends the
 * whole tree on timeout, abort or overflow. The timeout counts from the request's write.
 * Resolves once the process and everything it left behind are gone; never rejects.
 */
export function runProcess(spec: RunSpec, started?: ChildProcess): Promise<RunResult> {
  return new Promise<RunResult>((resolve) => {
    const chunks: Buffer[] = [];
    let outputBytes = 0;
    let failure: AlyxError | null = null;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    let stdoutDone = false;
    let settled = false;
    const kills: Promise<void>[] = [];
    const timers: NodeJS.Timeout[] = [];
    const stderr = new StderrLog(spec.logger);

    let child: ChildProcess;
    try {
      child = started ?? spawnFunctionProcess(spec);
    } catch (error) {
      resolve({ ok: false, error: startError(spec.command, error), stderrTail: '' });
      return;
    }

    if (child.pid !== undefined) runningGroups.add(child.pid);
    const endTree = (): void => {
      if (child.pid !== undefined) kills.push(killGroup(child.pid));
    };
    const fail = (error: AlyxError): void => {
      if (failure || settled) return;
      failure = error;
      endTree();
    };
    const onAbort = (): void => {
      const reason: unknown = spec.signal?.reason;
      fail(reason instanceof AlyxError ? reason : new ExecutionError('The invocation was cancelled.'));
    };

    const settle = async (): Promise<void> => {
      if (settled || !exit || !stdoutDone) return;
      settled = true;
      timers.forEach(clearInterval);
      spec.signal?.removeEventListener('abort', onAbort);
      stderr.flush();
      await Promise.all(kills);
      if (child.pid !== undefined) runningGroups.delete(child.pid);
      resolve(buildResult(Buffer.concat(chunks, outputBytes).toString('utf8'), exit, failure, stderr.tail, spec.logger));
    };

    timers.push(setTimeout(() => fail(new TimeoutError(spec.timeoutMs)), spec.timeoutMs));
    const memoryLimit = spec.memoryLimitBytes ?? 0;
    if (memoryLimit > 0 && child.pid !== undefined) {
      const pgid = child.pid;
      const sampler = setInterval(() => {
        const used = groupResidentBytes(pgid);
        if (used > memoryLimit) fail(new MemoryLimitExceededError(memoryLimit, used));
      }, MEMORY_SAMPLE_MS);
      timers.push(sampler);
    }
    if (spec.signal?.aborted) onAbort();
    else spec.signal?.addEventListener('abort', onAbort, { once: true });

    child.stdout?.on('data', (chunk: Buffer) => {
      if (failure) return;
      outputBytes += chunk.length;
      if (outputBytes > spec.maxOutputBytes) {
        chunks.length = 0;
        outputBytes = 0;
        fail(new OutputTooLargeError(spec.maxOutputBytes));
        return;
      }
      chunks.push(chunk);
    });
    child.stdout?.on('close', () => {
      stdoutDone = true;
      void settle();
    });
    child.stderr?.on('data', (chunk: Buffer) => stderr.write(chunk));
    child.stdin?.on('error', () => {
      // EPIPE: the function exited or closed stdin without reading its request. Its output decides.
    });

    child.on('error', (error) => {
      // The program could not be started (ENOENT, EACCES): no exit event follows.
      if (exit) return;
      failure ??= startError(spec.command, error);
      exit = { code: null, signal: null };
      stdoutDone = true;
      void settle();
    });
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      const pgid = child.pid as number;
      const left = failure ? 0 : groupMembers(pgid).length;
      if (left > 0) {
        spec.logger.warn({ processes: left }, `ended ${left} process(es) the function left behind`);
        endTree();
      }
      timers.push(
        setTimeout(() => {
          // Something outside the group still holds stdout: stop waiting for it.
          child.stdout?.destroy();
          stdoutDone = true;
          void settle();
        }, DRAIN_AFTER_EXIT_MS),
      );
      void settle();
    });

    child.stdin?.end(spec.payload);
  });
}

function buildResult(
  stdout: string,
  exit: { code: number | null; signal: NodeJS.Signals | null },
  failure: AlyxError | null,
  stderrTail: string,
  logger: Logger,
): RunResult {
  if (failure) return { ok: false, error: failure, stderrTail };
  const parsed = parseStdout(stdout);
  for (const line of parsed.otherLines) logger.info({ stream: 'stdout' }, line);
  if (parsed.response) return { ok: true, response: parsed.response, stderrTail };

  const how = exit.signal
    ? `was ended by signal ${exit.signal}`
    : exit.code === 0
      ? 'exited with code 0'
      : `exited with code ${exit.code}`;
  const what = stdout.trim() === '' ? 'without writing a response' : 'without writing a JSON object on stdout';
  return {
    ok: false,
    error: new ExecutionError(`The function ${how} ${what}.`, { exit_code: exit.code, signal: exit.signal }),
    stderrTail,
  };
}

function startError(command: string, error: unknown): AlyxError {
  const code = (error as NodeJS.ErrnoException).code ?? String(error);
  return new ExecutionError(`Could not start ${command} (${code}).`, { errno: code });
}

/** Splits stderr into lines for the log, and keeps its last few KiB. */
class StderrLog {
  readonly #logger: Logger;
  #pending = '';
  #tail = '';

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  get tail(): string {
    return this.#tail;
  }

  write(chunk: Buffer): void {
    const text = chunk.toString('utf8');
    this.#tail = (this.#tail + text).slice(-STDERR_TAIL_BYTES);
    this.#pending += text;
    let newline: number;
    while ((newline = this.#pending.indexOf('\n')) !== -1) {
      this.#emit(this.#pending.slice(0, newline));
      this.#pending = this.#pending.slice(newline + 1);
    }
    if (this.#pending.length > STDERR_MAX_LINE) {
      this.#emit(this.#pending);
      this.#pending = '';
    }
  }

  flush(): void {
    if (this.#pending !== '') this.#emit(this.#pending);
    this.#pending = '';
  }

  #emit(line: string): void {
    const trimmed = line.replace(/\r$/, '');
    if (trimmed !== '') this.#logger.info({ stream: 'stderr' }, trimmed);
  }
}
