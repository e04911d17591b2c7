/** SPEC §5: what goes into alyx's log of a function's own output (stdout besides the response, and stderr). */
import { LineSplitter } from '../line-splitter';
import type { Logger } from '../logger';
import { LineBudget, LOGGED_LINE_LIMITS, type DroppedOutput, type LineLimits } from './line-budget';
import type { ParsedStdout } from './protocol';

const STDERR_TAIL_BYTES = 4096;
/** A longer stderr line is logged in pieces of this size. */
const STDERR_MAX_LINE = 64 * 1024;

/** Logs the function's stdout lines other than its response, and one line for those past the limits. */
export function logStdoutLines(parsed: ParsedStdout, logger: Logger): void {
  for (const line of parsed.otherLines) logger.info({ stream: 'stdout' }, line);
  if (parsed.dropped) logDropped(logger, 'stdout', parsed.dropped);
}

function logDropped(logger: Logger, stream: 'stdout' | 'stderr', dropped: DroppedOutput, limits: LineLimits = LOGGED_LINE_LIMITS): void {
  logger.warn(
    { stream, dropped_lines: dropped.lines, dropped_bytes: dropped.bytes },
    `${stream}: ${dropped.lines} more line(s), ${dropped.bytes} bytes, were not logged (alyx logs at most ${limits.lines} lines or ${limits.bytes / 1024} KiB of each stream per invocation)`,
  );
}

/**
 * Splits stderr into lines for the log, within the limits (the rest is counted and logged as
 * one line at `flush`), and keeps its last few KiB for the error details in development.
 */
export class StderrLog {
  readonly #logger: Logger;
  readonly #budget: LineBudget;
  readonly #lines = new LineSplitter((line) => this.#emit(line), STDERR_MAX_LINE);
  #tail = '';
  /** The output not logged so far ends inside a line: that line is counted at its newline, or at flush. */
  #droppedOpenLine = false;

  constructor(logger: Logger, limits: LineLimits = LOGGED_LINE_LIMITS) {
    this.#logger = logger;
    this.#budget = new LineBudget(limits);
  }

  get tail(): string {
    return this.#tail;
  }

  write(chunk: Buffer): void {
    this.#tail = (this.#tail + chunk.subarray(-STDERR_TAIL_BYTES).toString('utf8')).slice(-STDERR_TAIL_BYTES);
    if (!this.#budget.open) {
      this.#drop(chunk);
      return;
    }
    const rest = this.#lines.push(chunk.toString('utf8'));
    if (rest !== null) this.#drop(Buffer.from(rest));
  }

  /** Logs what is left of a last line without its newline, and what did not fit the limits. */
  flush(): void {
    const rest = this.#lines.flush();
    if (rest !== null) this.#drop(Buffer.from(rest));
    if (this.#droppedOpenLine) this.#budget.drop(1, 0);
    this.#droppedOpenLine = false;
    const dropped = this.#budget.dropped;
    if (dropped) logDropped(this.#logger, 'stderr', dropped);
  }

  #drop(output: Buffer): void {
    if (output.length === 0) return;
    this.#budget.drop(countNewlines(output), output.length);
    this.#droppedOpenLine = output[output.length - 1] !== 0x0a;
  }

  /** Logs one line; false once the limits are reached. */
  #emit(line: string): boolean {
    if (line === '') return true;
    if (!this.#budget.take(Buffer.byteLength(line))) return false;
    this.#logger.info({ stream: 'stderr' }, line);
    return true;
  }
}

function countNewlines(output: Buffer): number {
  let count = 0;
  for (let at = output.indexOf(0x0a); at !== -1; at = output.indexOf(0x0a, at + 1)) count++;
  return count;
}
