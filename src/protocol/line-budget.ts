/** How many of a function's own output lines (stdout besides the response, stderr) alyx logs. */
export interface LineLimits {
  /** Lines per stream per invocation. */
  readonly lines: number;
  /** Bytes of those lines per stream per invocation. */
  readonly bytes: number;
}

/**
 * Each line is one synchronous log write: a function that prints millions of lines must not
 * hold the event loop (and every other request) for that long.
 */
export const LOGGED_LINE_LIMITS: LineLimits = Object.freeze({ lines: 1000, bytes: 256 * 1024 });

/** What one stream of one invocation did not get into the log. */
export interface DroppedOutput {
  readonly lines: number;
  /** Bytes from the first line not logged to the end of the stream (line ends included). */
  readonly bytes: number;
}

/**
 * The log allowance of one stream of one invocation. Lines are logged in order while they
 * fit; the first one that does not ends logging for the stream, and everything from it on is
 * counted instead, so the log shows an unbroken beginning and one count of the rest.
 */
export class LineBudget {
  readonly #limits: LineLimits;
  #lines = 0;
  #bytes = 0;
  #exhausted = false;
  #droppedLines = 0;
  #droppedBytes = 0;

  constructor(limits: LineLimits = LOGGED_LINE_LIMITS) {
    this.#limits = limits;
  }

  /** Whether lines are still being logged. */
  get open(): boolean {
    return !this.#exhausted;
  }

  /** Takes a line of `bytes` bytes if it fits; once one does not, none does. */
  take(bytes: number): boolean {
    if (!this.#exhausted && this.#lines < this.#limits.lines && this.#bytes + bytes <= this.#limits.bytes) {
      this.#lines++;
      this.#bytes += bytes;
      return true;
    }
    this.#exhausted = true;
    return false;
  }

  /** Counts output that was not logged. */
  drop(lines: number, bytes: number): void {
    this.#exhausted = true;
    this.#droppedLines += lines;
    this.#droppedBytes += bytes;
  }

  /** What was not logged; null when everything was. */
  get dropped(): DroppedOutput | null {
    return this.#droppedLines + this.#droppedBytes > 0 ? { lines: this.#droppedLines, bytes: this.#droppedBytes } : null;
  }
}

const isBlank = (code: number): boolean => code === 32 || code === 9 || code === 13;

/** The index of the first character of text[start, end) that is not a space, tab or carriage return; `end` when there is none. */
export function firstContent(text: string, start: number, end: number): number {
  let index = start;
  while (index < end && isBlank(text.charCodeAt(index))) index++;
  return index;
}

/** Whether text[start, end) holds more than spaces, tabs and carriage returns. */
export function hasContent(text: string, start: number, end: number): boolean {
  return firstContent(text, start, end) < end;
}

/** Non-empty lines of text[start, end), counted without making a string of each. */
export function countLines(text: string, start: number, end: number): number {
  let count = 0;
  let position = start;
  while (position < end) {
    const newline = text.indexOf('\n', position);
    const lineEnd = newline === -1 || newline > end ? end : newline;
    if (hasContent(text, position, lineEnd)) count++;
    position = lineEnd + 1;
  }
  return count;
}
