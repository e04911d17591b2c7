import { logStdoutLines, StderrLog } from '../../../src/protocol/function-output';
import { parseStdout } from '../../../src/protocol/protocol';
import { captureLogs } from '../../helpers/logs';

/**
 * Work per line over millions of lines takes seconds; bounded work, tens of ms. The line between
 * them leaves room for a loaded 2-core machine (this is no speed target, which benchmarks hold).
 */
const BOUNDED_MS = 1000;

/** pino writes through a stream: its lines arrive a turn of the loop later. */
const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("a function's stderr in alyx's log", () => {
  it('logs each non-empty line, across chunk boundaries and CRLF', async () => {
    const { logger, lines } = captureLogs();
    const stderr = new StderrLog(logger);
    for (const chunk of ['first li', 'ne\r\n\nsecond\n', 'no newline']) stderr.write(Buffer.from(chunk));
    stderr.flush();
    await settled();
    expect(lines().map((line) => [line.stream, line.msg])).toEqual([
      ['stderr', 'first line'],
      ['stderr', 'second'],
      ['stderr', 'no newline'],
    ]);
    expect(stderr.tail).toBe('first line\r\n\nsecond\nno newline');
  });

  it('stops at the line limit and logs one line that counts the rest, lines and bytes', async () => {
    const { logger, lines } = captureLogs();
    const stderr = new StderrLog(logger, { lines: 3, bytes: 1024 });
    stderr.write(Buffer.from('a\nb\nc\nd\ne'));
    stderr.write(Buffer.from('e\nf\n'));
    stderr.write(Buffer.from('g'));
    stderr.flush();
    await settled();
    const logged = lines();
    expect(logged.slice(0, 3).map((line) => line.msg)).toEqual(['a', 'b', 'c']);
    expect(logged).toHaveLength(4);
    expect(logged[3]).toMatchObject({ level: 40, stream: 'stderr', dropped_lines: 4, dropped_bytes: 'd\nee\nf\ng'.length });
  });

  it('stops at the byte limit', async () => {
    const { logger, lines } = captureLogs();
    const stderr = new StderrLog(logger, { lines: 100, bytes: 5 });
    stderr.write(Buffer.from('12\n34\n56\n'));
    stderr.flush();
    await settled();
    expect(lines().map((line) => line.msg ?? null)).toEqual(['12', '34', expect.stringMatching(/^stderr: 1 more line/)]);
  });

  it('keeps the last 4 KiB whatever was logged', () => {
    const { logger } = captureLogs();
    const stderr = new StderrLog(logger, { lines: 1, bytes: 10 });
    stderr.write(Buffer.from(`${'x\n'.repeat(10_000)}Traceback: the end\n`));
    expect(stderr.tail).toHaveLength(4096);
    expect(stderr.tail.endsWith('Traceback: the end\n')).toBe(true);
  });

  it('3,000,000 lines in 64 KiB chunks: the limit is reached quickly and the rest is only counted', async () => {
    const { logger, lines } = captureLogs();
    const stderr = new StderrLog(logger);
    const chunk = Buffer.from('x\n'.repeat(32 * 1024));
    const chunks = Math.ceil(3_000_000 / (32 * 1024));
    const started = performance.now();
    for (let index = 0; index < chunks; index++) stderr.write(chunk);
    stderr.flush();
    expect(performance.now() - started).toBeLessThan(BOUNDED_MS);
    await settled();
    const logged = lines();
    expect(logged).toHaveLength(1001);
    expect(logged[1000]).toMatchObject({ dropped_lines: chunks * 32 * 1024 - 1000, dropped_bytes: 2 * (chunks * 32 * 1024 - 1000) });
  });
});

describe("a function's stdout lines in alyx's log", () => {
  it('logs the lines besides the response and one line for those past the limits', async () => {
    const { logger, lines } = captureLogs();
    logStdoutLines(parseStdout(`one\ntwo\nthree\n{"output": 1}\n`, { lines: 2, bytes: 100 }), logger);
    await settled();
    expect(lines().map((line) => [line.stream, line.msg, line.dropped_lines])).toEqual([
      ['stdout', 'one', undefined],
      ['stdout', 'two', undefined],
      ['stdout', expect.stringMatching(/^stdout: 1 more line\(s\), 6 bytes, were not logged/), 1],
    ]);
  });
});
