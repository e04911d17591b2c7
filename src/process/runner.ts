import { AlyxError, ExecutionError, MemoryLimitExceededError, OutputTooLargeError, TimeoutError } from '../errors';
import type { Logger } from '../logger';
import { endEscaped, findLeftovers, invocationProcesses, type Leftovers } from './leftovers';
import { owner } from './owner';
import { heapWasExhausted, spawnFunctionProcess, type SpawnSpec } from './spawn';
import { parseStdout, type FunctionResponse, type ParsedStdout } from '../protocol/protocol';
import { logStdoutLines, StderrLog } from '../protocol/function-output';
import type { FunctionProcess } from './native-process';
import { killGroup, residentBytes } from './process-group';

export type { SpawnSpec } from './spawn';

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

export type RunOutcome =
  | { readonly ok: true; readonly response: FunctionResponse; readonly stderrTail: string }
  | { readonly ok: false; readonly error: AlyxError; readonly stderrTail: string };

/** The outcome, and when the process and everything it left behind are gone (the slot it holds is free then). */
export type RunResult = RunOutcome & { readonly finished: Promise<void> };

/** How often a capped invocation's tree memory is sampled. */
const MEMORY_SAMPLE_MS = 50;
/** How long stdout may stay open after the main process exited (a daemonised grandchild holding it). */
const DRAIN_AFTER_EXIT_MS = 2000;

/**
 * Spawns the process (or takes `started`, one a warm pool spawned with the same spec), writes
 * the request, reads stdout whole (up to the cap), logs stderr line by line, and ends the
 * whole tree on timeout, abort or overflow. The timeout counts from the request's write.
 * Resolves as soon as stdout has ended holding a response (the exit code does not matter then),
 * or else once the process has exited; `finished` resolves once the process and everything it
 * left behind are gone. Never rejects.
 */
export function runProcess(spec: RunSpec, started?: FunctionProcess): Promise<RunResult> {
  return new Promise<RunResult>((resolveResult) => {
    let markFinished!: () => void;
    const finished = new Promise<void>((resolveFinished) => (markFinished = resolveFinished));
    let answered = false;
    const resolve = (outcome: RunOutcome): void => {
      if (answered) return;
      answered = true;
      resolveResult({ ...outcome, finished });
    };
    const chunks: Buffer[] = [];
    let outputBytes = 0;
    let failure: AlyxError | null = null;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    let stdoutDone = false;
    let settled = false;
    const kills: Promise<void>[] = [];
    const timers: NodeJS.Timeout[] = [];
    const stderr = new StderrLog(spec.logger);
    const memoryLimit = spec.memoryLimitBytes ?? 0;
    let peakMemory = 0;

    if (spec.signal?.aborted && !started) {
      // Cancelled while it waited (client gone, shutdown): nothing is spawned.
      resolve({ ok: false, error: abortError(spec.signal), stderrTail: '' });
      markFinished();
      return;
    }
    let child: FunctionProcess;
    try {
      child = started ?? spawnFunctionProcess(spec);
    } catch (error) {
      resolve({ ok: false, error: error instanceof AlyxError ? error : startError(spec.command, error), stderrTail: '' });
      markFinished();
      return;
    }

    // A warm process may have closed its stdout while it waited: its 'close' has passed.
    if (child.stdout?.closed) stdoutDone = true;

    // The request goes first: the process works on it while the rest is set up here.
    child.stdin?.on('error', () => {
      // EPIPE: the function exited or closed stdin without reading its request. Its output decides.
    });
    child.stdin?.end(spec.payload);

    const invocation = child.pid === undefined ? null : owner.runningLeader(child.pid);
    /** Ends what the function left running and logs it; the group's own members are not news while alyx is ending it. */
    const endLeftovers = (leftovers: Leftovers, groupIsNews: boolean): void => {
      const inGroup = groupIsNews ? leftovers.inGroup : 0;
      const escaped = leftovers.escapedGroups.length;
      if (inGroup > 0) endTree();
      kills.push(...endEscaped(leftovers));
      logEnded(inGroup, escaped);
    };
    const logEnded = (inGroup: number, escaped: number): void => {
      if (inGroup + escaped === 0) return;
      const what = [inGroup > 0 ? `${inGroup} process(es) the function left behind` : '', escaped > 0 ? `${escaped} process group(s) that had left its group` : ''];
      spec.logger.warn({ processes: inGroup, escaped_groups: escaped }, `ended ${what.filter(Boolean).join(' and ')}`);
    };
    const endTree = (): void => {
      if (child.pid !== undefined) kills.push(killGroup(child.pid));
    };
    const fail = (error: AlyxError): void => {
      if (failure || settled) return;
      failure = error;
      // Looked at while the main process still runs: what left its group is ended with it,
      // and what it started is remembered as its own once orphaned (see orphans.ts).
      if (invocation && child.exitCode === null && child.signalCode === null) kills.push(...endEscaped(findLeftovers(invocation)));
      endTree();
    };
    const onAbort = (): void => fail(abortError(spec.signal as AbortSignal));

    // The look for what the process left behind runs once it has exited; the slot is held until then.
    let looked = invocation === null;
    const lookForLeftovers = (): void => {
      if (looked || !invocation) return;
      looked = true;
      endLeftovers(findLeftovers(invocation), failure === null);
      // A process can leave the group between the look and the signal to the group, still
      // holding stdout: it is looked for again once those ends are done, not after stdout.
      if (kills.length > 0) {
        void Promise.all(kills).then(() => {
          if (settled) return;
          const late = findLeftovers(invocation);
          if (late.escapedGroups.length > 0) endLeftovers(late, false);
        });
      }
      void settle();
    };

    const settle = async (): Promise<void> => {
      if (settled || !exit || !stdoutDone || !looked) return;
      settled = true;
      timers.forEach(clearInterval);
      spec.signal?.removeEventListener('abort', onAbort);
      stderr.flush();
      if (kills.length > 0 && invocation) {
        await Promise.all(kills);
        // A process may have left the group while it was being ended: look once more.
        const late = findLeftovers(invocation);
        if (late.escapedGroups.length > 0) endLeftovers(late, false);
      }
      // Until no end is added while waiting (the look above may still add some).
      for (let waited = 0; waited < kills.length; ) {
        waited = kills.length;
        await Promise.all(kills);
      }
      if (child.pid !== undefined) owner.finished(child.pid);
      // Without a response, a node function stopped by its heap limit (see heap-cap) hit the memory cap.
      if (!answered) {
        const heapFailure = memoryLimit > 0 && heapWasExhausted(stderr.tail) ? new MemoryLimitExceededError(memoryLimit, peakMemory, true) : null;
        resolve(buildResult(Buffer.concat(chunks, outputBytes).toString('utf8'), exit, failure, heapFailure, stderr.tail, spec.logger));
      }
      markFinished();
    };

    /** stdout has ended: with a response in it, that is the answer, whether or not the process has exited. */
    const answerEarly = (): void => {
      if (answered || failure) return;
      const stdout = Buffer.concat(chunks, outputBytes).toString('utf8');
      const parsed = parseStdout(stdout);
      if (parsed.response) resolve(buildResult(stdout, exit ?? { code: null, signal: null }, null, null, stderr.tail, spec.logger, parsed));
    };

    timers.push(setTimeout(() => fail(new TimeoutError(spec.timeoutMs)), spec.timeoutMs));
    if (memoryLimit > 0 && invocation) {
      const sampler = setInterval(() => {
        // The whole tree: the group, and what left it.
        const { inGroup, escaped } = invocationProcesses(invocation);
        const used = residentBytes([...inGroup, ...escaped]);
        peakMemory = Math.max(peakMemory, used);
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
    // At 'close' rather than 'end': by then the loop has also read what stderr already holds,
    // so the function's stderr lines are logged before its answer.
    child.stdout?.on('close', () => {
      stdoutDone = true;
      answerEarly();
      // It exited as stdout ended (see the exit handler): the look waits until the answer is out.
      if (exit && !looked) setImmediate(lookForLeftovers);
      void settle();
    });
    child.stderr?.on('data', (chunk: Buffer) => stderr.write(chunk));
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
      if (stdoutDone) {
        lookForLeftovers();
        return;
      }
      timers.push(
        setTimeout(() => {
          // Something outside the group still holds stdout: stop waiting for it.
          child.stdout?.destroy();
          stdoutDone = true;
          lookForLeftovers();
          void settle();
        }, DRAIN_AFTER_EXIT_MS),
      );
      // stdout ended in this same turn of the loop, and its close (with the answer) comes next:
      // most programs end stdout by exiting. Otherwise the look cannot wait, as what the
      // function left running may be what holds stdout open.
      if (!child.stdout?.readableEnded) lookForLeftovers();
    });
  });
}

function buildResult(
  stdout: string,
  exit: { code: number | null; signal: NodeJS.Signals | null },
  failure: AlyxError | null,
  heapFailure: AlyxError | null,
  stderrTail: string,
  logger: Logger,
  parsed?: ParsedStdout,
): RunOutcome {
  if (failure) return { ok: false, error: failure, stderrTail };
  parsed ??= parseStdout(stdout);
  logStdoutLines(parsed, logger);
  if (parsed.response) return { ok: true, response: parsed.response, stderrTail };
  if (heapFailure) return { ok: false, error: heapFailure, stderrTail };

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

/** An AlyxError given as the abort reason is the result; anything else is a plain cancellation. */
function abortError(signal: AbortSignal): AlyxError {
  const reason: unknown = signal.reason;
  return reason instanceof AlyxError ? reason : new ExecutionError('The invocation was cancelled.');
}

function startError(command: string, error: unknown): AlyxError {
  const code = (error as NodeJS.ErrnoException).code ?? String(error);
  return new ExecutionError(`Could not start ${command} (${code}).`, { errno: code });
}
