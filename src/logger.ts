import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogFormat } from './config/resolve';

export type { Logger };

export interface LoggerOptions {
  level: string;
  format: LogFormat;
  /** 1 = stdout (servers), 2 = stderr (commands whose stdout is their result). */
  fd?: 1 | 2;
  /** A destination to write to instead of a file descriptor (tests read the JSON lines back). */
  destination?: DestinationStream;
}

/** The one place alyx's logger is made: JSON lines, or pino-pretty for people at a terminal. */
export function createLogger(options: LoggerOptions): Logger {
  const base = { level: options.level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime };
  if (options.destination) return pino(base, options.destination);
  const fd = options.fd ?? 1;
  if (options.format === 'pretty') {
    // Loaded only when used: pino-pretty is not on the JSON hot path.
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const pretty = require('pino-pretty') as typeof import('pino-pretty');
    return pino(base, pretty.build({ destination: fd, sync: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l', singleLine: true }));
  }
  // Synchronous: one write on the main thread per line. Asynchronous writes hand every line to
  // libuv's thread pool and back (two thread wake-ups), which cost more here than the write.
  return pino(base, pino.destination({ fd, sync: true }));
}
