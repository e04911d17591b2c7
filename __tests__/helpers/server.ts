import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { ALYX_BIN, cleanEnv, REPO_ROOT } from './cli';
import { waitFor } from './processes';

export interface RunningServer {
  readonly url: string;
  readonly child: ChildProcess;
  /** Every JSON log line so far. */
  logs(): Array<Record<string, unknown>>;
  stderr(): string;
  /** Waits for a log line matching `predicate`; throws after `timeoutMs`. */
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Sends `signal` and waits for the exit (SIGKILL after `timeoutMs`). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started = new Set<ChildProcess>();

/** Signals the server's whole process group when it has one (a `command` such as make or npx). */
function signal(child: ChildProcess, name: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined && groupLeaders.has(child)) process.kill(-child.pid, name);
    else child.kill(name);
  } catch {
    // already gone
  }
}
const groupLeaders = new WeakSet<ChildProcess>();

/** Ends every server a test started and did not stop: call it in afterEach. */
export async function stopAllServers(): Promise<void> {
  await Promise.all(
    [...started].map(
      (child) =>
        new Promise<void>((resolve) => {
          // A group may outlive its leader (make exited, the server it started did not).
          if (groupLeaders.has(child)) signal(child, 'SIGKILL');
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          signal(child, 'SIGKILL');
        }),
    ),
  );
  started.clear();
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /**
   * Runs this program with `args` exactly as given, in its own process group, instead of the
   * built CLI with an ephemeral port: the port and the JSON log format then come from `env`.
   */
  command?: string;
  cwd?: string;
  /** alyx's fds from 3 on: an fd of the test's it inherits there (without close-on-exec), or 'ignore'. */
  extraStdio?: Array<number | 'ignore'>;
  /** Options for node itself, before alyx's own arguments (`--cpu-prof`). */
  nodeOptions?: string[];
  /** Another build's bin/alyx.js (benchmarks compare builds). */
  bin?: string;
  /** Once it listens, its log lines are read and thrown away, not parsed and kept (benchmarks, soaks). */
  drainLogs?: boolean;
}

/**
 * Starts `alyx <args>` on 127.0.0.1 with an ephemeral port and JSON logs, and resolves once
 * it listens. Rejects with its stderr if it exits first.
 */
export function startServer(args: string[], options: StartOptions = {}): Promise<RunningServer> {
  const [program, argv] = options.command
    ? [options.command, args]
    : [process.execPath, [...(options.nodeOptions ?? []), options.bin ?? ALYX_BIN, ...args, '--port', '0', '--host', '127.0.0.1', '--log-format', 'json']];
  const child = spawn(program, argv, {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env ?? cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe', ...(options.extraStdio ?? [])],
    detached: options.command !== undefined,
  });
  started.add(child);
  if (options.command) groupLeaders.add(child);
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  let pending = '';
  let listening = false;
  child.stdout?.on('data', (chunk: Buffer) => {
    if (listening && options.drainLogs) return;
    pending += chunk.toString('utf8');
    const complete = pending.split('\n');
    pending = complete.pop() ?? '';
    for (const line of complete) {
      if (line.trim() === '') continue;
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ msg: line, unparsed: true });
      }
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );

  const server = (url: string): RunningServer => ({
    url,
    child,
    logs: () => lines,
    stderr: () => stderr,
    exited: () => exit,
    async waitForLog(predicate, timeoutMs = 10_000) {
      if (!(await waitFor(() => lines.some(predicate), timeoutMs))) {
        throw new Error(`no such log line within ${timeoutMs} ms; logs:\n${lines.map((l) => JSON.stringify(l)).join('\n')}\n${stderr}`);
      }
      return lines.find(predicate) as Record<string, unknown>;
    },
    async stop(name = 'SIGTERM', timeoutMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) signal(child, name);
      const timer = setTimeout(() => signal(child, 'SIGKILL'), timeoutMs);
      const result = await exit;
      clearTimeout(timer);
      return result;
    },
  });

  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => {
      signal(child, 'SIGKILL');
      reject(new Error(`alyx did not start listening within ${options.timeoutMs ?? 15_000} ms:\n${stderr}`));
    }, options.timeoutMs ?? 15_000);
    const poll = setInterval(() => {
      const line = lines.find((entry) => typeof entry.url === 'string' && String(entry.msg).includes('listening'));
      if (line) {
        listening = true;
        clearInterval(poll);
        clearTimeout(deadline);
        resolve(server(line.url as string));
      }
    }, 10);
    void exit.then(({ code }) => {
      clearInterval(poll);
      clearTimeout(deadline);
      reject(new Error(`alyx exited with ${code} before listening:\n${stderr}\n${lines.map((l) => JSON.stringify(l)).join('\n')}`));
    });
  });
}

/** fetch with a deadline, for tests. */
export async function request(url: string, init: RequestInit & { timeoutMs?: number } = {}): Promise<{ status: number; headers: Headers; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const response = await fetch(url, { ...init, signal: init.signal ?? AbortSignal.timeout(init.timeoutMs ?? 20_000) });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, headers: response.headers, body };
}

/** An HTTP request sent exactly as given: no URL normalisation, optional chunked body. */
export function rawRequest(server: RunningServer, method: string, pathname: string, body?: string | string[]): Promise<{ status?: number; body: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(server.url);
    const req = http.request({ host: url.hostname, port: url.port, path: pathname, method }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
    });
    req.on('error', reject);
    for (const chunk of ([] as string[]).concat(body ?? [])) req.write(chunk);
    req.end();
  });
}

/** A bare TCP connection to the server, for clients that misbehave below HTTP; `received` is what came back. */
export async function openSocket(server: RunningServer): Promise<{ socket: net.Socket; received: () => string }> {
  const url = new URL(server.url);
  const socket = net.connect(Number(url.port), url.hostname);
  socket.on('error', () => undefined); // the server may cut it off: that is what these tests look for
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, received: () => received };
}
