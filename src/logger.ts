import pino, { type DestinationStream, type Logger } from 'pino';
import { boundedLogStream } from './log-destination';

export type { Logger };

export type LogFormat = 'pretty' | 'json';

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
  const target = options.fd === 2 ? process.stderr : process.stdout;
  if (options.format === 'pretty') {
    // Loaded only when used: pino-pretty is not on the JSON hot path.
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const pretty = require('pino-pretty') as typeof import('pino-pretty');
    const destination = boundedLogStream(target, (dropped) => `WARN: dropped ${dropped} log line(s): the log destination did not keep up\n`);
    return pino(base, pretty.build({ destination, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l', singleLine: true }));
  }
  const destination = boundedLogStream(target, (dropped) =>
    `${JSON.stringify({ level: 40, time: new Date().toISOString(), dropped_lines: dropped, msg: `dropped ${dropped} log line(s): the log destination did not keep up` })}\n`,
  );
  return pino(base, destination);
}
