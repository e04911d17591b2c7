import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/logger';

export interface CapturedLogs {
  logger: Logger;
  /** Every JSON line written so far, parsed. */
  lines: () => Array<Record<string, unknown>>;
}

/** A real pino logger whose JSON lines the test reads back. */
export function captureLogs(level = 'trace'): CapturedLogs {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  const logger = createLogger({ level, format: 'json', destination });
  return { logger, lines: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}
