import { ExecutionError, TimeoutError, type AlyxError } from '../errors';

/**
 * What a reuse process's faults say (SPEC §10). `starting`: the helper's handshake had not come
 * yet, which most often means the function was written without a helper; those messages say to
 * use one or remove `reuse`.
 */

const NO_HELPER =
  'a function with reuse: true must be written with alyx\'s helper (alyx/handler, "from alyx import handler", or the Go helper file), which reads one request per line: use the helper, or remove reuse from its manifest';

export type Exit = { readonly code: number | null; readonly signal: NodeJS.Signals | null };

/** A stdout line that is neither the handshake nor the response to the invocation it serves. */
export function strayLine(line: string, starting: boolean): AlyxError {
  const shown = JSON.stringify(line.length > 200 ? `${line.slice(0, 200)}…` : line);
  if (starting) return new ExecutionError(`The function wrote to stdout before announcing reuse mode (${shown}): ${NO_HELPER}.`);
  return new ExecutionError(
    `In reuse mode stdout carries only responses, and the function wrote another line on it (${shown}): write output with console.log or print, which the helper sends to stderr, not to file descriptor 1 directly.`,
  );
}

/** Its stdout closed, and no exit followed. */
export function stdoutClosed(starting: boolean): AlyxError {
  return new ExecutionError(`The function closed its stdout: ${starting ? NO_HELPER : 'in reuse mode it must stay open for the next response'}.`);
}

/** It exited: before its handshake, or during (or between) invocations; `pendingBytes` of a line had no newline. */
export function exited(exit: Exit, starting: boolean, pendingBytes: number): AlyxError {
  const details = { exit_code: exit.code, signal: exit.signal };
  if (starting) return new ExecutionError(`The function's process ${how(exit)} before announcing reuse mode: ${NO_HELPER}.`, details);
  const half = pendingBytes > 0 ? `, after ${pendingBytes} bytes of a line without its newline` : '';
  return new ExecutionError(`The function's process ${how(exit)} during the invocation${half}.`, details);
}

/** The invocation's time ran out: before the handshake (no helper, most likely), or with a line still open. */
export function timedOut(timeoutMs: number, starting: boolean, pendingBytes: number): AlyxError {
  if (starting) return new ExecutionError(`The function's process did not announce reuse mode within ${timeoutMs} ms: ${NO_HELPER}.`, { timeout_ms: timeoutMs });
  if (pendingBytes === 0) return new TimeoutError(timeoutMs);
  return new TimeoutError(
    timeoutMs,
    `The function did not answer within ${timeoutMs} ms and was ended; it had written ${pendingBytes} bytes of a line without the newline that ends a response in reuse mode.`,
  );
}

export function how(exit: Exit): string {
  return exit.signal ? `was ended by signal ${exit.signal}` : `exited with code ${exit.code}`;
}
