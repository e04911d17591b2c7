/**
 * Splits a stream, chunk by chunk, into lines without their newline (or a carriage return
 * before it). A line longer than `maxLine` is handed on in pieces. `onLine` returns false to
 * stop: the text from that line on is then returned, unsplit, to whoever pushed it.
 */
export class LineSplitter {
  readonly #onLine: (line: string) => boolean | void;
  readonly #maxLine: number;
  #pending = '';

  constructor(onLine: (line: string) => boolean | void, maxLine = Number.POSITIVE_INFINITY) {
    this.#onLine = onLine;
    this.#maxLine = maxLine;
  }

  /** Splits what `text` completes; returns the text left unsplit because onLine stopped, or null. */
  push(text: string): string | null {
    this.#pending += text;
    let start = 0;
    let newline: number;
    while ((newline = this.#pending.indexOf('\n', start)) !== -1) {
      if (this.#onLine(withoutReturn(this.#pending.slice(start, newline))) === false) return this.#takeFrom(start);
      start = newline + 1;
    }
    this.#pending = this.#pending.slice(start);
    if (this.#pending.length > this.#maxLine && this.#onLine(this.#pending) === false) return this.#takeFrom(0);
    if (this.#pending.length > this.#maxLine) this.#pending = '';
    return null;
  }

  /** Hands on a last line that has no newline; returns it when onLine stopped, else null. */
  flush(): string | null {
    if (this.#pending === '') return null;
    const line = this.#pending;
    this.#pending = '';
    return this.#onLine(withoutReturn(line)) === false ? line : null;
  }

  #takeFrom(start: number): string {
    const rest = this.#pending.slice(start);
    this.#pending = '';
    return rest;
  }
}

const withoutReturn = (line: string): string => (line.endsWith('\r') ? line.slice(0, -1) : line);
