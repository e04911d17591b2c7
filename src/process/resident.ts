import { AlyxError, ExecutionError, MemoryLimitExceededError, OutputTooLargeError } from '../errors';
import type { Logger } from '../logger';
import { StderrLog } from '../protocol/function-output';
import { frameRequest, LineFramer, readFramedLine } from '../protocol/framed';
import { invocationProcesses } from './leftovers';
import type { FunctionProcess } from './native-process';
import { abortError, startError, type RunOutcome } from './outcome';
import { owner, type Invocation } from './owner';
import { residentBytes } from './process-group';
import { exited, how, strayLine, stdoutClosed, timedOut } from './resident-faults';
import { endFunctionProcess, heapWasExhausted, spawnFunctionProcess, type SpawnSpec } from './spawn';

/** What a reuse process runs: fixed when it starts. */
export interface ResidentSpec extends SpawnSpec {
  /** Cap on one response line (functions.max_output). */
  readonly maxOutputBytes: number;
}

/** One invocation handed to a reuse process. */
export interface ResidentCall {
  readonly requestId: string;
  /** The encoded request document (one line). */
  readonly payload: string;
  readonly timeoutMs: number;
  /** Aborting ends the process; an AlyxError given as the reason becomes the result. */
  readonly signal?: AbortSignal;
  /** A child logger that already carries the function name and request id. */
  readonly logger: Logger;
}

/**
 * - `starting`: spawned, the helper's handshake not seen yet;
 * - `idle`: waiting for a request; `busy`: serving one;
 * - `ending`: it exited or a fault decided its end, and its tree is being ended;
 * - `ended`: it and what it started are gone.
 */
type State = 'starting' | 'idle' | 'busy' | 'ending' | 'ended';

/** An outcome, and whether the request never reached the process (its stdin was closed: it had exited). */
export type ResidentOutcome = RunOutcome & { readonly undelivered?: true };

interface Current {
  readonly call: ResidentCall;
  readonly resolve: (outcome: ResidentOutcome) => void;
  readonly timers: NodeJS.Timeout[];
  readonly onAbort: () => void;
  peakMemory: number;
  /** Writing the request failed: the process had closed its stdin, so it cannot have read it. */
  unsent: boolean;
  /** Resolves once the request's write has succeeded or failed (its callback comes a turn of the loop later). */
  sent: Promise<void> | null;
}

const MEMORY_SAMPLE_MS = 50;
/** After its exit, how long stdout may still deliver what the process wrote before it. */
const DRAIN_AFTER_EXIT_MS = 2000;
/** After stdout closed, how long its exit may take to arrive before the close alone is the fault. */
const EXIT_AFTER_CLOSE_MS = 200;

/**
 * One process of a function in reuse mode (SPEC §10): started once, it serves invocations one
 * at a time, each request a line on its stdin and each response a line on its stdout. A fault
 * (timeout, memory cap, a line that is not the response, an exit) ends its whole tree and
 * fails only the invocation it was serving; the pool starts another when one is needed.
 */
export class ResidentProcess {
  readonly #spec: ResidentSpec;
  readonly #logger: Logger;
  readonly #onEnded: (process: ResidentProcess) => void;
  readonly #framer: LineFramer;
  #state: State = 'starting';
  #child: FunctionProcess | null = null;
  #invocation: Invocation | null = null;
  #current: Current | null = null;
  /** Its stderr goes to the log of the invocation it serves, or served last. */
  #stderr: StderrLog;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  #stdoutClosed = false;
  #ending: Promise<void> | null = null;
  /** Ended once its invocation is answered: reload, recycle, idle. */
  #retired = false;
  /** When it last finished an invocation (or started). */
  idleSince = Date.now();
  /** Resolves once it and what it started are gone. */
  readonly ended: Promise<void>;
  #markEnded!: () => void;

  constructor(spec: ResidentSpec, logger: Logger, onEnded: (process: ResidentProcess) => void) {
    this.#spec = spec;
    this.#logger = logger;
    this.#onEnded = onEnded;
    this.#stderr = new StderrLog(logger);
    this.ended = new Promise<void>((resolve) => (this.#markEnded = resolve));
    this.#framer = new LineFramer(spec.maxOutputBytes, (line) => this.#line(line), () => this.#fault(new OutputTooLargeError(spec.maxOutputBytes)));
  }

  /** Whether it can take an invocation now. */
  get available(): boolean {
    return (this.#state === 'idle' || (this.#state === 'starting' && this.#current === null)) && !this.#retired;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts the process; an AlyxError when it cannot be started at all. */
  start(): AlyxError | null {
    let child: FunctionProcess;
    try {
      child = spawnFunctionProcess(this.#spec, true);
    } catch (error) {
      this.#state = 'ended';
      this.#markEnded();
      return error instanceof AlyxError ? error : startError(this.#spec.command, error);
    }
    this.#child = child;
    this.#invocation = child.pid === undefined ? null : owner.runningLeader(child.pid);
    child.on('exit', (code: number | null, signal: NodeJS.Signals | null) => this.#exited(code, signal));
    child.on('error', (error) => this.#fault(startError(this.#spec.command, error)));
    child.stdout?.on('data', (chunk: Buffer) => this.#framer.push(chunk));
    child.stdout?.on('close', () => this.#stdoutClosedNow());
    child.stderr?.on('data', (chunk: Buffer) => this.#stderr.write(chunk));
    child.stdin?.on('error', () => {
      // EPIPE: it exited, or closed stdin. The exit decides what that means.
    });
    return null;
  }

  /** Serves one invocation: given only when `available`, or to the process just started for it. Never rejects. */
  call(call: ResidentCall): Promise<ResidentOutcome> {
    return new Promise<ResidentOutcome>((resolve) => {
      if (this.#state === 'ending' || this.#state === 'ended' || this.#current) {
        resolve({ ok: false, error: new ExecutionError('The reuse process ended before the invocation reached it.'), stderrTail: '' });
        return;
      }
      this.#stderr.flush();
      this.#stderr = new StderrLog(call.logger);
      const current: Current = { call, resolve, timers: [], onAbort: () => this.#abort(current), peakMemory: 0, unsent: false, sent: null };
      this.#current = current;
      current.timers.push(setTimeout(() => this.#fault(timedOut(call.timeoutMs, this.#state === 'starting', this.#framer.pendingBytes)), call.timeoutMs));
      const cap = this.#spec.memoryLimitBytes ?? 0;
      const invocation = this.#invocation;
      if (cap > 0 && invocation) current.timers.push(setInterval(() => this.#sampleMemory(invocation, cap, current), MEMORY_SAMPLE_MS));
      if (call.signal?.aborted) {
        current.onAbort();
        return;
      }
      call.signal?.addEventListener('abort', current.onAbort, { once: true });
      if (this.#state === 'idle') this.#send(call);
    });
  }

  /**
   * The caller is gone (client disconnected, shutdown). A process still starting has not been
   * given the request: it goes on starting, and serves the next invocation. One serving it is
   * ended, as the invocation's work would be in a process of its own.
   */
  #abort(current: Current): void {
    const error = abortError(current.call.signal as AbortSignal);
    if (this.#state !== 'starting' || this.#retired) {
      this.#fault(error);
      return;
    }
    this.#settle(current, { ok: false, error, stderrTail: this.#stderr.tail });
    // Without a helper it would wait for ever: the invocation's timeout still bounds its start.
    setTimeout(() => {
      if (this.#state === 'starting' && this.#current === null) void this.end();
    }, current.call.timeoutMs).unref();
  }

  /** Ends it once it has no invocation (now, if it has none). */
  retire(): void {
    this.#retired = true;
    if (this.#state === 'idle' || this.#state === 'starting') void this.end();
  }

  /** Ends it and what it started now; an invocation it serves fails as cancelled. */
  end(): Promise<void> {
    this.#fault(new ExecutionError('The reuse process was ended while it served the invocation.'));
    return this.#ending ?? Promise.resolve();
  }

  #send(call: ResidentCall): void {
    this.#state = 'busy';
    const current = this.#current;
    const stdin = this.#child?.stdin;
    if (!current || !stdin) return;
    current.sent = new Promise<void>((sent) => {
      stdin.write(frameRequest(call.payload), (error) => {
        // EPIPE: it exited between two invocations, and alyx had not seen its exit yet.
        if (error) {
          current.unsent = true;
          this.#fault(new ExecutionError('The reuse process had exited before it was given the invocation.'));
        }
        sent();
      });
    });
  }

  #line(line: string): void {
    if (this.#state === 'ending' || this.#state === 'ended') return;
    const current = this.#current;
    const read = readFramedLine(line, this.#state === 'busy' && current ? current.call.requestId : null);
    if (read.kind === 'handshake' && this.#state === 'starting') {
      this.#state = 'idle';
      if (current) this.#send(current.call);
      else if (this.#retired) void this.end();
      return;
    }
    if (read.kind === 'response' && current) {
      this.#settle(current, { ok: true, response: read.response, stderrTail: this.#stderr.tail });
      this.#state = 'idle';
      this.idleSince = Date.now();
      if (this.#retired) void this.end();
      return;
    }
    this.#fault(strayLine(line, this.#state === 'starting'));
  }

  #exited(code: number | null, signal: NodeJS.Signals | null): void {
    this.#exit = { code, signal };
    if (this.#state === 'ending' || this.#state === 'ended') return;
    // Not to be handed another invocation, whatever stdout still holds.
    this.#retired = true;
    if (this.#stdoutClosed) this.#afterExit();
    else {
      const timer = setTimeout(() => {
        this.#child?.stdout?.destroy();
        this.#afterExit();
      }, DRAIN_AFTER_EXIT_MS);
      this.#child?.stdout?.once('close', () => clearTimeout(timer));
    }
  }

  #stdoutClosedNow(): void {
    this.#stdoutClosed = true;
    if (this.#exit) {
      this.#afterExit();
      return;
    }
    // Most often it is exiting, and its exit (which says how) is about to arrive.
    const closedAlone = setTimeout(() => this.#fault(stdoutClosed(this.#state === 'starting')), EXIT_AFTER_CLOSE_MS);
    this.#child?.once('exit', () => clearTimeout(closedAlone));
  }

  /** It exited and stdout has given all it held: the invocation it served, if any, fails with why. */
  #afterExit(): void {
    if (this.#state === 'ending' || this.#state === 'ended') return;
    const exit = this.#exit ?? { code: null, signal: null };
    const cap = this.#spec.memoryLimitBytes ?? 0;
    if (this.#current && cap > 0 && heapWasExhausted(this.#stderr.tail)) {
      this.#fault(new MemoryLimitExceededError(cap, this.#current.peakMemory, true));
      return;
    }
    if (!this.#current && this.#state !== 'starting') this.#logger.warn({ exit_code: exit.code, signal: exit.signal }, `a reuse process ${how(exit)} between invocations; another starts when one is needed`);
    this.#fault(exited(exit, this.#state === 'starting', this.#framer.pendingBytes));
  }

  #sampleMemory(invocation: Invocation, cap: number, current: Current): void {
    const { inGroup, escaped } = invocationProcesses(invocation);
    const used = residentBytes([...inGroup, ...escaped]);
    current.peakMemory = Math.max(current.peakMemory, used);
    if (used > cap) this.#fault(new MemoryLimitExceededError(cap, used));
  }

  /** Decides its end: the invocation it serves fails with `error` once its tree is gone. */
  #fault(error: AlyxError): void {
    if (this.#state === 'ending' || this.#state === 'ended') return;
    this.#state = 'ending';
    this.#retired = true;
    const current = this.#current;
    const child = this.#child;
    this.#ending = (async () => {
      if (child) await endFunctionProcess(child);
      // Its exit can be seen before the write of the request fails: that failure says it was never read.
      if (current?.sent) await current.sent;
      this.#stderr.flush();
      this.#state = 'ended';
      if (current) this.#settle(current, { ok: false, error, stderrTail: this.#stderr.tail, ...(current.unsent ? { undelivered: true as const } : {}) });
      this.#onEnded(this);
      this.#markEnded();
    })();
  }

  #settle(current: Current, outcome: ResidentOutcome): void {
    if (this.#current !== current) return;
    this.#current = null;
    current.timers.forEach(clearTimeout);
    current.call.signal?.removeEventListener('abort', current.onAbort);
    current.resolve(outcome);
  }
}
