import { AlyxError, ExecutionError } from '../errors';
import type { Logger } from '../logger';
import { parseStdout, type FunctionResponse, type ParsedStdout } from '../protocol/protocol';
import { logStdoutLines } from '../protocol/function-output';

/** What a run of a function process comes to: its response, or the error that stands for it. */
export type RunOutcome =
  | { readonly ok: true; readonly response: FunctionResponse; readonly stderrTail: string }
  | { readonly ok: false; readonly error: AlyxError; readonly stderrTail: string };

/**
 * The outcome from what the process wrote and how it ended: a fault alyx decided wins, then a
 * response in stdout (its other lines are logged), then the heap limit, then the exit.
 */
export function buildOutcome(
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
export function abortError(signal: AbortSignal): AlyxError {
  const reason: unknown = signal.reason;
  return reason instanceof AlyxError ? reason : new ExecutionError('The invocation was cancelled.');
}

export function startError(command: string, error: unknown): AlyxError {
  const code = (error as NodeJS.ErrnoException).code ?? String(error);
  return new ExecutionError(`Could not start ${command} (${code}).`, { errno: code });
}
