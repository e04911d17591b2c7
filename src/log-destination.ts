import SonicBoom from 'sonic-boom';

/** Log lines waiting for a slow reader are kept up to this size; lines past it are dropped and counted. */
export const LOG_BUFFER_BYTES = 8 * 1024 * 1024;
/** A destination that has taken nothing for this long while lines wait is stuck: exit does not wait for it. */
const STUCK_MS = 1000;

/**
 * Where alyx's log lines go (fd 1 or 2): written from libuv's thread pool, so a reader that stops
 * reading (a stuck pipe) never holds up request handling. Lines queue in memory up to
 * LOG_BUFFER_BYTES; past that they are dropped, and once the destination takes lines again one
 * line (made by `summary`) says how many were lost. At exit what is queued is written, unless
 * the destination is stuck.
 */
export function logDestination(fd: number, summary: (dropped: number) => string): SonicBoom {
  const stream = new SonicBoom({ fd, sync: false, minLength: 0, maxLength: LOG_BUFFER_BYTES });
  let dropped = 0;
  let lastProgress = Date.now();
  stream.on('drop', () => {
    dropped++;
  });
  stream.on('write', () => {
    lastProgress = Date.now();
  });
  stream.on('drain', () => {
    if (dropped === 0) return;
    const lost = dropped;
    dropped = 0;
    stream.write(summary(lost));
  });
  stream.on('error', (error: NodeJS.ErrnoException) => {
    // The reader is gone (EPIPE) or the descriptor broke: there is nowhere left to log to.
    stream.write = () => true;
    process.stderr.write(`alyx: cannot write logs (${error.code ?? error.message}); logging stops\n`);
  });
  process.on('exit', () => {
    const stuck = dropped > 0 && Date.now() - lastProgress > STUCK_MS;
    if (stuck) return;
    try {
      stream.flushSync();
    } catch {
      // exiting anyway
    }
  });
  return stream;
}
