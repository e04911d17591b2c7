import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { ALYX_BIN, cleanEnv } from './cli';
import { waitFor } from './processes';

export interface TerminalSession {
  /** Everything the program wrote to the terminal so far, with the terminal's \r\n made \n. */
  output(): string;
  /** Types into the terminal: "\x03" is Ctrl-C, "\r" is Enter. */
  type(text: string): void;
  /** Waits until the output matches; throws with the output after `timeoutMs`. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** The program's exit status, as `script -e` reports it; null if it had to be killed after `timeoutMs`. */
  exited(timeoutMs?: number): Promise<number | null>;
  /** Ends the program and everything it started, if still running. */
  end(): Promise<void>;
}

const sessions = new Set<TerminalSession>();

/**
 * Runs the built CLI with `args` on a real pseudo-terminal (util-linux `script`), as a person at
 * a terminal would: stdin and stdout are a TTY, and Ctrl-C reaches alyx as the terminal's SIGINT.
 */
export function runOnTerminal(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): TerminalSession {
  // `exec`: script runs the command through $SHELL, and a shell that stays as alyx's parent (dash
  // does) dies of the terminal's SIGINT itself, so the status would be the shell's, not alyx's.
  const command = `exec ${[process.execPath, ALYX_BIN, ...args].map((word) => `'${word.replace(/'/g, "'\\''")}'`).join(' ')}`;
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    cwd: options.cwd,
    env: { ...(options.env ?? cleanEnv()), TERM: 'dumb' },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8').replace(/\r\n/g, '\n')));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exit = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const session: TerminalSession = {
    output: () => output,
    type: (text) => child.stdin?.write(text),
    async waitForOutput(pattern, timeoutMs = 15_000) {
      if (!(await waitFor(() => pattern.test(output), timeoutMs))) throw new Error(`no output matching ${pattern} within ${timeoutMs} ms:\n${output}`);
    },
    async exited(timeoutMs = 20_000) {
      const timer = setTimeout(() => void session.end(), timeoutMs);
      const code = await exit;
      clearTimeout(timer);
      return child.signalCode === null ? code : null;
    },
    async end() {
      // The program runs in the terminal's own session: end it (and its children) by pid, then script.
      for (const pid of descendants(child)) signal(pid, 'SIGKILL');
      signal(child.pid, 'SIGKILL');
      await exit;
      sessions.delete(session);
    },
  };
  sessions.add(session);
  return session;
}

/** Ends every terminal session a test started: call it in afterEach. */
export async function endAllTerminals(): Promise<void> {
  await Promise.all([...sessions].map((session) => session.end()));
}

function signal(pid: number | undefined, name: NodeJS.Signals): void {
  try {
    if (pid !== undefined) process.kill(pid, name);
  } catch {
    // already gone
  }
}

/** Pids of every live process below `child`, found through /proc. */
function descendants(child: ChildProcess): number[] {
  const parents = new Map<number, number>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = [];
  const walk = (pid: number): void => {
    for (const [candidate, parent] of parents) {
      if (parent === pid) {
        found.push(candidate);
        walk(candidate);
      }
    }
  };
  if (child.pid !== undefined) walk(child.pid);
  return found;
}
