/**
 * What the benchmarks share: starting the servers they compare (alyx, or a minimal server of
 * their own) on 127.0.0.1, driving a closed loop at them with autocannon, the servers taking
 * turns in slices so that a change in the machine's load hits them alike, and summing up what
 * each one saw (requests/s, p50, p99, and the server's own CPU per request).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { percentile } from './stats';
import { cleanEnv } from '../__tests__/helpers/cli';
import { startServer as startAlyxServer } from '../__tests__/helpers/server';

/** The alyx under test: this checkout's build, or another one's bin/alyx.js. */
export const ALYX = process.env.ALYX_BIN ?? path.resolve(__dirname, '..', 'bin', 'alyx.js');
export const WARMUP_SECONDS = 1;
/** A closed-loop cell is measured in up to this many slices per server, the servers taking turns. */
export const ROUNDS = 5;
/** The longest wait, after a slice, for the requests it cut off to end. */
const SETTLE_MAX_MS = 2000;
const START_DEADLINE_MS = 20_000;

export interface Load {
  label: string;
  connections: number;
  rate?: number;
}

export interface Measured {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** CPU time of the server process itself (not of the functions it starts) per request, ms. */
  serverCpuMs: number;
  /** Every answered request's latency, ascending. */
  latencies: number[];
}

export interface Server {
  url: (name: string) => string;
  /** A request that runs no function: the floor's 404, alyx's health check. */
  idleUrl: string;
  child: ChildProcess;
}

/** What alyx would spawn for each function (`alyx list --json --prod`), so that a server of the benchmark's own spawns the same. */
export function commandsOf(project: string, bin = ALYX): Record<string, { command: string[]; cwd: string }> {
  const listed = spawnSync(process.execPath, [bin, 'list', '--json', '--prod', '-C', project], { encoding: 'utf8' });
  const body = JSON.parse(listed.stdout) as { functions: Array<{ name: string; status: string; command: string[] | null }> };
  const commands: Record<string, { command: string[]; cwd: string }> = {};
  for (const fn of body.functions) {
    if (fn.status !== 'ready' || !fn.command) throw new Error(`${fn.name} is ${fn.status}: ${listed.stdout}`);
    commands[fn.name] = { command: fn.command, cwd: path.join(project, 'functions', fn.name) };
  }
  return commands;
}

/** A port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts a server process on `port` and waits until it answers HTTP. Its stdout goes nowhere,
 * so reading alyx's log lines costs this process (which also drives the load) nothing.
 */
export async function startServer(argv: string[], env: NodeJS.ProcessEnv, port: number, route: (base: string, name: string) => string, idlePath: string, program = process.execPath): Promise<Server> {
  const child = spawn(program, argv, { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + START_DEADLINE_MS;
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      await fetch(`${base}/api/health`, { signal: AbortSignal.timeout(1000) });
      return { url: (name) => route(base, name), idleUrl: `${base}${idlePath}`, child };
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  child.kill('SIGKILL');
  throw new Error(`${argv.join(' ')} did not start listening on ${base}`);
}

/** `alyx serve` on the project, with `env` added to a clean environment; `nodeOptions` go to node itself (`--cpu-prof`). */
export async function serveAlyx(project: string, env: NodeJS.ProcessEnv = {}, nodeOptions: string[] = [], bin = ALYX): Promise<Server> {
  const server = await startAlyxServer(['serve', '-C', project], {
    env: cleanEnv(env),
    nodeOptions,
    bin,
    drainLogs: true,
    timeoutMs: START_DEADLINE_MS,
  });
  return { url: (name) => `${server.url}/api/functions/${name}`, idleUrl: `${server.url}/api/health`, child: server.child };
}

export async function stop(server: Server): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** What one autocannon run saw: each answered request's exact latency, the failures, and how long it ran (s). */
interface Sample {
  latencies: number[];
  errors: number;
  seconds: number;
}

/**
 * One autocannon run for `seconds`, or, given `amount`, for that many requests: a run by time
 * cuts off the requests in flight at its end, a run by count lets each connection's last one end.
 */
function cannon(url: string, load: Load, seconds: number, amount?: number): Promise<Sample> {
  return new Promise((resolve, reject) => {
    // autocannon's own histogram holds whole milliseconds; its response events carry the exact time.
    const latencies: number[] = [];
    const started = performance.now();
    // A run by count ends at autocannon's next sample after its last response: the run's time ends at that response.
    let lastResponse = started;
    let bound: NodeJS.Timeout | undefined;
    const instance = autocannon(
      {
        url,
        method: 'POST',
        body: '{"name": "bench"}',
        headers: { 'content-type': 'application/json' },
        connections: load.connections,
        ...(amount === undefined ? { duration: seconds } : { amount }),
        // autocannon stops at its next sample: every 100 ms rather than every second, so a slice
        // of 2.5 s does not run for 3.
        sampleInt: 100,
        timeout: 30,
      },
      (error, result) => {
        clearTimeout(bound);
        if (error) return reject(error);
        const ended = amount === undefined ? performance.now() : lastResponse;
        resolve({ latencies, errors: result.errors + result.non2xx + result.timeouts, seconds: (ended - started) / 1000 });
      },
    );
    instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => {
      latencies.push(ms);
      lastResponse = performance.now();
    });
    // A run by count against a server slower than expected still ends.
    if (amount !== undefined) bound = setTimeout(() => instance.stop(), (4 * seconds + 30) * 1000);
  });
}

/**
 * A closed loop, the servers taking turns in slices (the order turning each round), so a change
 * in the machine's load over the cell hits them alike. A slice lasts at least 20 typical
 * requests (up to ROUNDS slices per server; one when requests are long). After each slice the
 * requests it cut off are given time to end before the next server's slice; the server's CPU is
 * counted over the slice and that pause.
 *
 * With `drain`, no request is cut off: each slice is as many requests as the server answered in
 * that time so far, and each connection's last one ends. alyx aborts an invocation whose client
 * left, and in reuse mode that ends the process, which the next slice would pay to start again.
 */
export async function closedLoopInTurn(servers: Record<string, Server>, name: string, load: Load, seconds: number, { drain = false } = {}): Promise<Record<string, Measured>> {
  const labels = Object.keys(servers);
  const samples = new Map(labels.map((label) => [label, { latencies: [] as number[], errors: 0, cpuMs: 0, seconds: 0 }]));
  const warmUps: number[] = [];
  /** Requests/s of each server so far, for the size of its next slice by count. */
  const rates = new Map<string, number>();
  for (const label of labels) {
    const warmUp = await cannon(servers[label].url(name), load, WARMUP_SECONDS);
    warmUps.push(...warmUp.latencies);
    rates.set(label, warmUp.latencies.length / warmUp.seconds);
    // What the warm-up cut off may have ended processes: they start again here, not in a slice.
    if (drain) await cannon(servers[label].url(name), load, WARMUP_SECONDS, 2 * load.connections);
  }
  // A slice cut off mid-request loses what was in flight: it lasts at least 20 typical requests.
  const typicalMs = percentile(warmUps.sort((x, y) => x - y), 50) || 0;
  const rounds = Math.max(1, Math.min(ROUNDS, Math.floor(seconds / Math.max(seconds / ROUNDS, (20 * typicalMs) / 1000))));
  const slice = seconds / rounds;
  for (let round = 0; round < rounds; round++) {
    for (let turn = 0; turn < labels.length; turn++) {
      const label = labels[(round + turn) % labels.length];
      const pid = servers[label].child.pid as number;
      const cpuBefore = processCpuMs(pid);
      const amount = drain ? Math.max(load.connections, Math.round((rates.get(label) ?? 0) * slice)) : undefined;
      const sample = await cannon(servers[label].url(name), load, slice, amount);
      const slowest = Math.max(0, ...sample.latencies);
      await new Promise((resolve) => setTimeout(resolve, Math.min(SETTLE_MAX_MS, 2 * slowest)));
      const total = samples.get(label) as { latencies: number[]; errors: number; cpuMs: number; seconds: number };
      total.latencies.push(...sample.latencies);
      total.errors += sample.errors;
      total.seconds += sample.seconds;
      total.cpuMs += processCpuMs(pid) - cpuBefore;
      rates.set(label, total.latencies.length / total.seconds);
    }
  }
  const measured: Record<string, Measured> = {};
  for (const [label, total] of samples) measured[label] = summarize(total.latencies, total.latencies.length / total.seconds, total.errors, total.cpuMs);
  return measured;
}

/** Requests/s, p50 and p99 of the answered requests' latencies, and the server's CPU per request. */
export function summarize(latencies: number[], rps: number, errors: number, cpuMs: number): Measured {
  const sorted = latencies.sort((x, y) => x - y);
  return { rps, p50: percentile(sorted, 50), p99: percentile(sorted, 99), errors, serverCpuMs: sorted.length > 0 ? cpuMs / sorted.length : NaN, latencies: sorted };
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** User + system CPU time of one process (its own, not its children's), from /proc; 0 elsewhere. */
export function processCpuMs(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

export const loadAverage = (): string => os.loadavg().map((value) => value.toFixed(2)).join(' ');

export const fmt = (value: number, digits = 1): string => value.toFixed(digits);
export const signed = (value: number, digits = 1): string => `${value > 0 ? '+' : ''}${fmt(value, digits)}`;
