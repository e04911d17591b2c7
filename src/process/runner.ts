import { AlyxError, ExecutionError, MemoryLimitExceededError, OutputTooLargeError, TimeoutError } from '../errors';
import type { Logger } from '../logger';
import { parseStdout } from '../protocol/protocol';
import { StderrLog } from '../protocol/function-output';
import { invocationProcesses, TreeEnds } from './leftovers';
import type { FunctionProcess } from './native-process';
import { owner, type Invocation } from './owner';
import { residentBytes } from './process-group';
import { abortError, buildOutcome, startError, type RunOutcome } from './outcome';
import { heapWasExhausted, spawnFunctionProcess, startFunctionProcess, type SpawnSpec } from './spawn';

export type { SpawnSpec } from './spawn';
export type { RunOutcome } from './outcome';

/** One process to run under the protocol, with its limits. */
export interface RunSpec extends SpawnSpec {
  /** The request document written to stdin, followed by EOF. */
  readonly payload: string;
  readonly timeoutMs: number;
  readonly maxOutputBytes: number;
  /** Aborting ends the process tree; an AlyxError given as the reason becomes the result. */
  readonly signal?: AbortSignal;
  /** A child logger that already carries the function name and request id. */
  readonly logger: Logger;
}

/** The outcome, and when the process and everything it left behind are gone (the slot it holds is free then). */
export type RunResult = RunOutcome & { readonly finished: Promise<void> };

/** How often a capped invocation's tree memory is sampled. */
const MEMORY_SAMPLE_MS = 50;
/** How long stdout may stay open after the main process exited (a daemonised grandchild holding it). */
const DRAIN_AFTER_EXIT_MS = 2000;

/**
 * Runs one process under the protocol: spawns it (or takes `started`, one a warm pool spawned
 * with the same spec), writes the request, reads stdout whole (up to the cap), logs stderr line
 * by line, and ends the whole tree on timeout, abort, overflow or memory cap. The timeout
 * counts from the request's write. Resolves as soon as stdout has ended holding a response (the
 * exit code does not matter then), or else once the process has exited; `finished` resolves
 * once the process and everything it left behind are gone. From the moment it is called it owns
 * the process, whatever happens, and it never rejects.
 *
 * Alone, the process starts on this thread: glibc's posix_spawn holds it until the program has
 * exec'd, which costs less than handing the start to another thread and back. Beside other
 * invocations (running, or starting), the start goes to a thread of libuv's pool, and this
 * thread serves them meanwhile (see startFunctionProcess). Either way the request is in stdin
 * as the program starts.
 */
export function runProcess(spec: RunSpec, started?: FunctionProcess): Promise<RunResult> {
  const alone = activeRuns === 0;
  activeRuns++;
  const result = new Promise<RunResult>((resolve) => {
    const run = new ProcessRun(spec, resolve);
    const begin = (child?: FunctionProcess): void => {
      try {
        run.start(child);
      } catch (error) {
        // A fault of alyx's own while setting up: the process it was given is still ended.
        run.fail(new ExecutionError(`The invocation could not be run (${(error as Error)?.message ?? String(error)}).`));
      }
    };
    if (started || alone || spec.signal?.aborted) {
      begin(started);
      return;
    }
    // Aborted while it started: run.start ends it at once.
    startFunctionProcess(spec, spec.payload).then(begin, (error: unknown) =>
      run.fail(error instanceof AlyxError ? error : startError(spec.command, error)),
    );
  });
  void result.finally(() => activeRuns--);
  return result;
}

/**
 * Runs under way, from runProcess's call until their answer: after it, what is left (the look
 * for leftovers, the reap) barely needs the event loop, and one invocation after another (a
 * client's requests in turn) should each count as alone.
 */
let activeRuns = 0;

/** How long a failed run waits for the rest of its stderr before it answers. */
const STDERR_GRACE_MS = 250;

/**
 * Where a run is. Each step only goes forward:
 * - `running`: the main process runs and nothing has gone wrong;
 * - `ending`: a fault (timeout, overflow, abort, memory cap) decided the outcome, and the tree
 *   is being ended;
 * - `exited`: the main process has exited; what it left is looked for and ended, and stdout
 *   may still be held open by something outside it (for at most DRAIN_AFTER_EXIT_MS);
 * - `cleaning`: it has exited, stdout is closed and the look is done: the ends started are
 *   awaited, then the outcome is built if none was given early;
 * - `done`: the process and what it left are gone.
 */
type Phase = 'running' | 'ending' | 'exited' | 'cleaning' | 'done';

/** What happened to a run: each is handled in `#on`, and only there. */
type RunEvent =
  | { readonly type: 'stdout-closed' }
  | { readonly type: 'exit'; readonly code: number | null; readonly signal: NodeJS.Signals | null }
  | { readonly type: 'start-failed'; readonly error: AlyxError }
  | { readonly type: 'fault'; readonly error: AlyxError }
  | { readonly type: 'drain-expired' }
  | { readonly type: 'look' };

class ProcessRun {
  readonly #spec: RunSpec;
  readonly #resolve: (result: RunResult) => void;
  readonly #finished: Promise<void>;
  #markFinished!: () => void;
  #phase: Phase = 'running';
  #child: FunctionProcess | null = null;
  /** The outcome a fault decided; it wins over whatever the process still writes. */
  #failure: AlyxError | null = null;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  #stdoutClosed = false;
  /** Whether what the process left running has been looked for (once it has exited). */
  #looked = false;
  #answered = false;
  readonly #chunks: Buffer[] = [];
  #outputBytes = 0;
  readonly #stderr: StderrLog;
  readonly #memoryLimit: number;
  #peakMemory = 0;
  /** Ends of process groups under way; the run is done once all have resolved. */
  #ends: TreeEnds | null = null;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #onAbort = (): void => this.#on({ type: 'fault', error: abortError(this.#spec.signal as AbortSignal) });

  constructor(spec: RunSpec, resolve: (result: RunResult) => void) {
    this.#spec = spec;
    this.#resolve = resolve;
    this.#finished = new Promise<void>((markFinished) => (this.#markFinished = markFinished));
    this.#stderr = new StderrLog(spec.logger);
    this.#memoryLimit = spec.memoryLimitBytes ?? 0;
  }

  start(started: FunctionProcess | undefined): void {
    const spec = this.#spec;
    if (spec.signal?.aborted && !started) {
      // Cancelled while it waited (client gone, shutdown): nothing is spawned.
      this.#on({ type: 'start-failed', error: abortError(spec.signal) });
      return;
    }
    let child: FunctionProcess;
    try {
      child = started ?? spawnFunctionProcess(spec, false, spec.payload);
    } catch (error) {
      this.#on({ type: 'start-failed', error: error instanceof AlyxError ? error : startError(spec.command, error) });
      return;
    }
    this.#child = child;
    const invocation = child.pid === undefined ? null : owner.runningLeader(child.pid);
    if (child.pid !== undefined) this.#ends = new TreeEnds(child.pid, invocation, spec.logger);
    // Without a record (it could not be started) there is nothing to look for once it has exited.
    this.#looked = invocation === null;
    // A warm process may have closed its stdout while it waited: its 'close' has passed.
    if (child.stdout?.closed) this.#stdoutClosed = true;
    child.on('exit', (code: number | null, signal: NodeJS.Signals | null) => this.#on({ type: 'exit', code, signal }));
    // The program could not be started (ENOENT, EACCES): no exit event follows.
    child.on('error', (error) => this.#on({ type: 'start-failed', error: startError(spec.command, error) }));
    child.stdout?.on('data', (chunk: Buffer) => this.#output(chunk));
    // At 'close' rather than 'end': by then the loop has also read what stderr already holds,
    // so the function's stderr lines are logged before its answer.
    child.stdout?.on('close', () => this.#on({ type: 'stdout-closed' }));
    child.stderr?.on('data', (chunk: Buffer) => this.#stderr.write(chunk));
    // A process given its request as it started (posix_spawn's) has it already, and no stdin
    // stream; a warm one, or node's spawn's, gets it now.
    child.stdin?.on('error', () => {
      // EPIPE: the function exited or closed stdin without reading its request. Its output decides.
    });
    child.stdin?.end(spec.payload);

    this.#timers.push(setTimeout(() => this.#on({ type: 'fault', error: new TimeoutError(spec.timeoutMs) }), spec.timeoutMs));
    if (this.#memoryLimit > 0 && invocation) this.#timers.push(setInterval(() => this.#sampleMemory(invocation), MEMORY_SAMPLE_MS));
    if (spec.signal?.aborted) this.#onAbort();
    else spec.signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** Ends the run with `error`: the tree is ended if there is one, and the outcome is given once it is gone. */
  fail(error: AlyxError): void {
    if (this.#child) this.#on({ type: 'fault', error });
    else this.#on({ type: 'start-failed', error });
  }

  /** The one place that decides what each event does to the run. */
  #on(event: RunEvent): void {
    if (this.#phase === 'cleaning' || this.#phase === 'done') return;
    switch (event.type) {
      case 'fault':
        if (this.#failure) return;
        this.#failure = event.error;
        if (this.#phase === 'running') this.#phase = 'ending';
        this.#ends?.endTree(!this.#exit);
        return;
      case 'start-failed':
        // Nothing ran, or nothing more will: the process never started.
        if (this.#exit) return;
        this.#failure ??= event.error;
        this.#exit = { code: null, signal: null };
        this.#stdoutClosed = true;
        // Nothing was started that could have left anything.
        if (!this.#ends) this.#looked = true;
        this.#phase = 'exited';
        break;
      case 'stdout-closed':
        this.#stdoutClosed = true;
        this.#answerEarly();
        // It exited as stdout ended (see 'exit'): the look waits until the answer is out.
        if (this.#exit && !this.#looked) setImmediate(() => this.#on({ type: 'look' }));
        break;
      case 'exit':
        this.#exit = { code: event.code, signal: event.signal };
        this.#phase = 'exited';
        if (this.#stdoutClosed) {
          this.#lookForLeftovers();
          break;
        }
        // Something outside the group may hold stdout: it gets a while, then stdout is let go.
        this.#timers.push(setTimeout(() => this.#on({ type: 'drain-expired' }), DRAIN_AFTER_EXIT_MS));
        // stdout ended in this same turn of the loop, and its close (with the answer) comes next:
        // most programs end stdout by exiting. Otherwise the look cannot wait, as what the
        // function left running may be what holds stdout open.
        if (!this.#child?.stdout?.readableEnded) this.#lookForLeftovers();
        return;
      case 'drain-expired':
        this.#child?.stdout?.destroy();
        this.#stdoutClosed = true;
        this.#lookForLeftovers();
        break;
      case 'look':
        this.#lookForLeftovers();
        break;
    }
    if (this.#exit && this.#stdoutClosed && this.#looked) void this.#clean();
  }

  #output(chunk: Buffer): void {
    if (this.#failure) return;
    this.#outputBytes += chunk.length;
    if (this.#outputBytes > this.#spec.maxOutputBytes) {
      this.#chunks.length = 0;
      this.#outputBytes = 0;
      this.#on({ type: 'fault', error: new OutputTooLargeError(this.#spec.maxOutputBytes) });
      return;
    }
    this.#chunks.push(chunk);
  }

  /** The whole tree: the group, and what left it. */
  #sampleMemory(invocation: Invocation): void {
    const { inGroup, escaped } = invocationProcesses(invocation);
    const used = residentBytes([...inGroup, ...escaped]);
    this.#peakMemory = Math.max(this.#peakMemory, used);
    if (used > this.#memoryLimit) this.#on({ type: 'fault', error: new MemoryLimitExceededError(this.#memoryLimit, used) });
  }

  /** stdout has ended: with a response in it, that is the answer, whether or not the process has exited. */
  #answerEarly(): void {
    if (this.#answered || this.#failure) return;
    const stdout = this.#stdout();
    const parsed = parseStdout(stdout);
    if (parsed.response) this.#answer(buildOutcome(stdout, this.#exit ?? { code: null, signal: null }, null, null, this.#stderr.tail, this.#spec.logger, parsed));
  }

  /** Once it has exited: what the function left running is ended. The slot is held until then. */
  #lookForLeftovers(): void {
    if (this.#looked) return;
    this.#looked = true;
    this.#ends?.endLeftovers(this.#failure === null);
  }

  /** Exited, stdout closed, looked: waits for every end under way, then gives the outcome if none was given yet. */
  async #clean(): Promise<void> {
    this.#phase = 'cleaning';
    this.#timers.forEach(clearTimeout);
    this.#spec.signal?.removeEventListener('abort', this.#onAbort);
    const ending = this.#ends?.done();
    if (ending) await ending;
    // Without an answer yet, stderr may say why: its pipe is read apart from stdout's, so its last
    // lines can still be on the way when stdout has closed.
    if (!this.#answered) await this.#stderrEnded();
    this.#stderr.flush();
    if (this.#child?.pid !== undefined) owner.finished(this.#child.pid);
    if (!this.#answered) {
      // Without a response, a node function stopped by its heap limit (see spawn.ts) hit the memory cap.
      const heapFailure = this.#memoryLimit > 0 && heapWasExhausted(this.#stderr.tail) ? new MemoryLimitExceededError(this.#memoryLimit, this.#peakMemory, true) : null;
      this.#answer(buildOutcome(this.#stdout(), this.#exit ?? { code: null, signal: null }, this.#failure, heapFailure, this.#stderr.tail, this.#spec.logger));
    }
    this.#phase = 'done';
    this.#markFinished();
  }

  /** Resolves once stderr has closed, or after STDERR_GRACE_MS: what holds it open longer is not waited for. */
  #stderrEnded(): Promise<void> {
    const stderr = this.#child?.stderr;
    if (!stderr || stderr.closed || stderr.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, STDERR_GRACE_MS);
      function done(): void {
        clearTimeout(timer);
        stderr?.off('close', done);
        resolve();
      }
      stderr.once('close', done);
    });
  }

  #answer(outcome: RunOutcome): void {
    if (this.#answered) return;
    this.#answered = true;
    this.#resolve({ ...outcome, finished: this.#finished });
  }

  #stdout(): string {
    return Buffer.concat(this.#chunks, this.#outputBytes).toString('utf8');
  }
}
