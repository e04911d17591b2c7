import { Writable } from 'node:stream';

/** Log lines waiting for a slow reader are kept up to this size; lines past it are dropped and counted. */
export const LOG_BUFFER_BYTES = 8 * 1024 * 1024;

/**
 * Where alyx's log lines go: `target` is process.stdout or process.stderr. Over a pipe or a
 * socket, node writes each line at once, on the main thread, and queues what the reader has not
 * taken yet, so a reader that stops (a stuck pipe) never holds up request handling; a file or a
 * terminal is written synchronously. The queue is kept up to LOG_BUFFER_BYTES; lines past it are
 * dropped, and once the reader has caught up one line (made by `summary`) says how many.
 */
export function boundedLogStream(target: Writable, summary: (dropped: number) => string): Writable {
  let dropped = 0;
  target.on('drain', () => {
    if (dropped === 0) return;
    const lost = dropped;
    dropped = 0;
    target.write(summary(lost));
  });
  target.on('error', () => {
    // The reader is gone (EPIPE): there is nowhere left to log to.
    dropped = 0;
  });
  return new Writable({
    decodeStrings: false,
    write(line: string, _encoding, done) {
      if (target.destroyed || target.writableLength > LOG_BUFFER_BYTES) dropped++;
      else target.write(line);
      done();
    },
  });
}
