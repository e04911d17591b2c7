import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const ALYX = path.resolve(__dirname, '..', 'bin', 'alyx.js');
const START_DEADLINE_MS = 20_000;

type LogEntry = Record<string, unknown>;

/**
 * Starts `alyx dev|serve` on 127.0.0.1 with an ephemeral port and JSON logs, and resolves with
 * its URL once it listens and `alsoWaitFor` (when given) has matched a log line. Later output
 * is drained unread.
 */
export async function startAlyx(
  command: 'dev' | 'serve',
  project: string,
  alsoWaitFor?: (entry: LogEntry) => boolean,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [ALYX, command, '-C', project, '-p', '0', '--host', '127.0.0.1', '--log-format', 'json'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env,
  });
  let url = '';
  let seen = !alsoWaitFor;
  let buffered = '';
  const onData = (chunk: Buffer): void => {
    buffered += chunk.toString('utf8');
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      const entry = JSON.parse(line) as LogEntry;
      if (typeof entry.url === 'string' && entry.mode) url = entry.url; // the "listening" line, not a function's row
      if (alsoWaitFor?.(entry)) seen = true;
    }
  };
  child.stdout?.on('data', onData);
  const deadline = Date.now() + START_DEADLINE_MS;
  while (!(url && seen)) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`alyx ${command} did not start within ${START_DEADLINE_MS} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  child.stdout?.off('data', onData);
  child.stdout?.resume();
  return { url, child };
}
