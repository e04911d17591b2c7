/**
 * Soak of background work across replicas (SPEC §11, §12, §14): three `alyx serve` share one
 * state store: NATS JetStream, first a single server, then a three-node cluster (`?replicas=3`);
 * or, with `--store sqlite`, one SQLite file. While 3,000 async invocations are POSTed
 * round-robin over the replicas to a reuse-mode node function (every fifth one fails with a 503
 * on every attempt, until it is dead) and another function's two interval schedules fire every
 * second, one replica is SIGKILLed and started again, another is SIGTERMed and started again,
 * and in the cluster one NATS node is stopped and started again. Each function appends a JSON
 * line to one file when it starts and when it answers. At the end every accepted invocation must
 * be final (polled over HTTP on any live replica), every fire time of the schedules' first
 * SOAK_SCHEDULE_SECONDS must have run once, and no process of the run may be left once the
 * replicas have stopped. A separate timed phase runs the same quick invocations through one
 * replica, then through three, with no faults.
 *
 *   npm run build && npm run soak:replicas        # NATS: a single server, then a three-node cluster
 *   npm run soak:replicas -- --nats cluster       # only one of them: single | cluster
 *   npm run soak:replicas -- --store sqlite       # three replicas on one SQLite file
 *
 * SOAK_INVOCATIONS=3000 SOAK_RATE=50 SOAK_SCHEDULE_SECONDS=60 SOAK_FINAL_WAIT_SECONDS=180
 * SOAK_THROUGHPUT_N=2000 by default; SOAK_REUSE=0 runs the soak's function as a process per
 * invocation. Exits 1 when an invocation was lost, a fire time ran twice or was missed, or a
 * process was left. Talks to 127.0.0.1 only; each run is bounded by SOAK_MAX_SECONDS (default 900).
 */
import type { ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { cleanEnv, REPO_ROOT } from '../__tests__/helpers/cli';
import { NatsServers } from '../__tests__/helpers/nats-server';
import { processesWithArgs, waitFor } from '../__tests__/helpers/processes';
import { startServer, type RunningServer } from '../__tests__/helpers/server';
import { fmt, getJson, linkHelper, postAsync, processesMentioning, sleep, writeFunctions } from './soak-common';
import { loadAverage } from './turns';

const TOTAL = Number(process.env.SOAK_INVOCATIONS ?? 3000);
/** Invocations POSTed per second at most: 3,000 at 50/s last the schedules' 60 s. */
const RATE = Number(process.env.SOAK_RATE ?? 50);
/** POSTs in flight at once. */
const CONCURRENCY = 8;
const SCHEDULE_SECONDS = Number(process.env.SOAK_SCHEDULE_SECONDS ?? 60);
const FINAL_WAIT_MS = Number(process.env.SOAK_FINAL_WAIT_SECONDS ?? 180) * 1000;
const THROUGHPUT_N = Number(process.env.SOAK_THROUGHPUT_N ?? 2000);
/** The soak's function runs in reuse mode (SOAK_REUSE=0: a process per invocation, which two cores run at a fraction of the rate). */
const REUSE = process.env.SOAK_REUSE !== '0';
const MAX_MS = Number(process.env.SOAK_MAX_SECONDS ?? 900) * 1000;
const REPLICAS = 3;
/** The failing function's `retries`: a failing invocation is dead after RETRIES + 1 attempts. */
const RETRIES = 2;
/**
 * functions.timeout and every manifest's: small, because JetStream's ack deadline (the longest
 * timeout + 10 s) decides when what a SIGKILL cut off runs again.
 */
const FUNCTION_TIMEOUT = '5s';
const SHUTDOWN_TIMEOUT = '1s';
/** Per replica: half of it (4) runs background work. */
const FUNCTION_CONCURRENCY = 8;
/** Every FAIL_EVERY-th invocation fails. */
const FAIL_EVERY = 5;
/** How long a killed replica stays down, so that POSTs meet its closed port. */
const REPLICA_DOWN_MS = 2000;
const NATS_DOWN_MS = 10_000;
const START_TIMEOUT_MS = 60_000;
const START_TRIES = 5;
/** Quick invocations sent to each replica of the throughput phase before the clock starts. */
const WARM_UP = 8;
/** A fire time that has no invocation this long after the window's end was never queued. */
const QUEUED_WITHIN_MS = 15_000;
const SCHEDULES = ['s1', 's2'];

type StoreKind = 'nats-single' | 'nats-cluster' | 'sqlite';

const STORE_LABELS: Record<StoreKind, string> = {
  'nats-single': 'NATS JetStream, one nats-server',
  'nats-cluster': 'NATS JetStream, a three-node cluster, state.url with all three URLs and ?replicas=3',
  sqlite: 'one SQLite file shared by the replicas',
};

/** The runs the command line asks for: `--store nats|sqlite`, `--nats single|cluster|both`. */
function runsWanted(argv: string[]): StoreKind[] {
  const option = (name: string, fallback: string): string => {
    const index = argv.indexOf(`--${name}`);
    const inline = argv.find((arg) => arg.startsWith(`--${name}=`));
    return inline ? inline.slice(name.length + 3) : index >= 0 && argv[index + 1] ? argv[index + 1] : fallback;
  };
  const store = option('store', process.env.SOAK_STORE ?? 'nats');
  const nats = option('nats', process.env.SOAK_NATS ?? 'both');
  if (store === 'sqlite') return ['sqlite'];
  if (store !== 'nats') throw new Error(`--store ${store}: write nats or sqlite`);
  if (nats === 'single') return ['nats-single'];
  if (nats === 'cluster') return ['nats-cluster'];
  if (nats === 'both') return ['nats-single', 'nats-cluster'];
  throw new Error(`--nats ${nats}: write single, cluster or both`);
}

// Whatever happens, every process this soak started ends with it.
const alyxChildren = new Set<ChildProcess>();
const natsConfigs = new Set<string>();
const projects = new Set<string>();

function killEverything(): void {
  for (const child of alyxChildren) child.kill('SIGKILL');
  for (const config of natsConfigs) for (const pid of processesWithArgs('-c', config)) killQuietly(pid);
  for (const project of projects) for (const { pid } of processesMentioning(project)) killQuietly(pid);
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

process.on('exit', killEverything);
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.once(signal, () => {
    killEverything();
    process.exit(code);
  });
}

/** The state store of one run: NATS servers (or none), and the `state.url` that names it. */
interface Store {
  readonly kind: StoreKind;
  /** null: the default file path, shared by replicas of one project. */
  readonly url: string | null;
  readonly nats: NatsServers | null;
}

async function openStore(kind: StoreKind): Promise<Store> {
  if (kind === 'sqlite') return { kind, url: null, nats: null };
  const nats = kind === 'nats-cluster' ? await NatsServers.cluster(3) : await NatsServers.single();
  for (const node of nats.nodes) natsConfigs.add(path.join(node.dir, 'server.conf'));
  return { kind, url: kind === 'nats-cluster' ? `${nats.url}?replicas=3` : nats.url, nats };
}

async function closeStore(store: Store): Promise<void> {
  if (!store.nats) return;
  await store.nats.stop();
  for (const node of store.nats.nodes) natsConfigs.delete(path.join(node.dir, 'server.conf'));
}

/** A one-shot node function that appends a JSON line to SOAK_LOG when it starts and when it answers; `body` has request and reply. */
const logged = (body: string): string => `const fs = require('node:fs');
const note = (event, request) =>
  fs.appendFileSync(
    process.env.SOAK_LOG,
    JSON.stringify({ event, id: request.request_id, fn: request.function, attempt: request.context.attempt, replica: process.env.SOAK_REPLICA, trigger: request.context.trigger, at: Date.now() }) + '\\n',
  );
let data = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => (data += chunk));
process.stdin.on('end', () => {
  const request = JSON.parse(data);
  note('start', request);
  const reply = (response) => {
    note('end', request);
    process.stdout.write(JSON.stringify({ request_id: request.request_id, ...response }) + '\\n');
  };
  ${body}
});
`;

/** The same as a reuse function, written with alyx's helper: one process serves many invocations. */
const loggedReuse = (body: string): string => `const fs = require('node:fs');
const { handler, FunctionError } = require('alyx/handler');

const note = (event, ctx) =>
  fs.appendFileSync(
    process.env.SOAK_LOG,
    JSON.stringify({ event, id: ctx.requestId, fn: ctx.function, attempt: ctx.attempt, replica: process.env.SOAK_REPLICA, trigger: ctx.trigger, at: Date.now() }) + '\\n',
  );

module.exports = handler(async (input, ctx) => {
  note('start', ctx);
  ${body}
});
`;

const WORK_SLEEP = '50 + (Number(request.input.i) % 4) * 50';

const SOAK_FUNCTIONS: Record<string, Record<string, string>> = {
  work: {
    'index.js': REUSE
      ? loggedReuse(`await new Promise((resolve) => setTimeout(resolve, ${WORK_SLEEP.replace('request.input', 'input')}));
  note('end', ctx);
  if (input.fail) throw new FunctionError('ASKED_TO_FAIL', 'this invocation fails every attempt', { status: 503 });
  return { ok: true };`)
      : logged(`setTimeout(() => {
    if (request.input.fail) reply({ success: false, error: { code: 'ASKED_TO_FAIL', message: 'this invocation fails every attempt', status: 503 } });
    else reply({ success: true, output: { ok: true } });
  }, ${WORK_SLEEP});`),
    'manifest.yaml': `retries: ${RETRIES}\ntimeout: ${FUNCTION_TIMEOUT}\n${REUSE ? 'reuse: true\n' : ''}`,
  },
  tick: {
    'index.js': logged("reply({ success: true, output: { ok: true } });"),
    'manifest.yaml': `retries: ${RETRIES}\ntimeout: ${FUNCTION_TIMEOUT}\nschedules:\n${SCHEDULES.map((name) => `  - name: ${name}\n    type: interval\n    expression: 1s\n`).join('')}`,
  },
};

const QUICK_FUNCTIONS: Record<string, Record<string, string>> = {
  quick: {
    'index.js': `const fs = require('node:fs');
const { handler } = require('alyx/handler');

module.exports = handler(async (input, ctx) => {
  fs.appendFileSync(process.env.SOAK_LOG, JSON.stringify({ event: 'end', id: ctx.requestId, fn: ctx.function, attempt: ctx.attempt, replica: process.env.SOAK_REPLICA, at: Date.now() }) + '\\n');
  return { ok: true };
});
`,
    'manifest.yaml': `reuse: true\ntimeout: ${FUNCTION_TIMEOUT}\n`,
  },
};

function writeProject(prefix: string, store: Store, functions: Record<string, Record<string, string>>): { project: string; log: string } {
  const project = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  projects.add(project);
  const log = path.join(project, 'functions.log');
  fs.writeFileSync(log, '');
  const state = store.url === null ? '' : `state:\n  url: ${JSON.stringify(store.url)}\n`;
  fs.writeFileSync(
    path.join(project, 'alyx.yaml'),
    `server:\n  shutdown_timeout: ${SHUTDOWN_TIMEOUT}\nfunctions:\n  timeout: ${FUNCTION_TIMEOUT}\n  concurrency: ${FUNCTION_CONCURRENCY}\n  env:\n    SOAK_LOG: ${log}\n${state}`,
  );
  linkHelper(project);
  writeFunctions(project, functions);
  return { project, log };
}

function removeProject(project: string): void {
  projects.delete(project);
  fs.rmSync(project, { recursive: true, force: true });
}

/** One line the functions wrote. */
interface FunctionEvent {
  readonly event: 'start' | 'end';
  readonly id: string;
  readonly fn: string;
  readonly attempt: number;
  readonly replica: string;
  readonly trigger?: { type: string; schedule?: string; scheduled_at?: string } | null;
  readonly at: number;
}

/** The functions' file, read as it grows. */
class FunctionLog {
  readonly #file: string;
  #offset = 0;
  #partial = '';
  readonly events: FunctionEvent[] = [];
  /** Per request id, its lines in order. */
  readonly byId = new Map<string, FunctionEvent[]>();

  constructor(file: string) {
    this.#file = file;
  }

  /** Reads what was appended since the last call. */
  refresh(): void {
    const fd = fs.openSync(this.#file, 'r');
    try {
      const buffer = Buffer.alloc(1 << 20);
      for (;;) {
        const read = fs.readSync(fd, buffer, 0, buffer.length, this.#offset);
        if (read === 0) break;
        this.#offset += read;
        const lines = (this.#partial + buffer.subarray(0, read).toString('utf8')).split('\n');
        this.#partial = lines.pop() ?? '';
        for (const line of lines) {
          if (!line) continue;
          const event = JSON.parse(line) as FunctionEvent;
          this.events.push(event);
          const list = this.byId.get(event.id) ?? [];
          list.push(event);
          this.byId.set(event.id, list);
        }
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Request ids a replica started and has not answered (per attempt). */
  inFlight(replica: string): string[] {
    this.refresh();
    const open: string[] = [];
    for (const [id, events] of this.byId) {
      const started = events.filter((event) => event.event === 'start' && event.replica === replica);
      if (started.some((start) => !events.some((event) => event.event === 'end' && event.replica === replica && event.attempt === start.attempt))) open.push(id);
    }
    return open;
  }
}

/** One alyx serving the project in a slot; a slot's replica is started again after a fault. */
interface Replica {
  readonly slot: number;
  /** r1.1, r1.2 (the first replica started again), …: what its functions write as `replica`. */
  readonly name: string;
  readonly server: RunningServer;
  readonly agent: http.Agent;
  up: boolean;
  /** The soak stopped it; any other exit is a crash. */
  stopping: boolean;
}

interface Problem {
  count: number;
  readonly replicas: Set<string>;
  first: number;
  last: number;
}

interface Crash {
  readonly replica: string;
  readonly exit: string;
  readonly at: number;
  readonly tail: string;
}

class Replicas {
  readonly #project: string;
  readonly #startedAt: number;
  readonly slots: Array<Replica | null> = Array<Replica | null>(REPLICAS).fill(null);
  /** Every replica started, in order, for their logs. */
  readonly all: Replica[] = [];
  readonly crashes: Crash[] = [];
  /** Starts that failed and were tried again (alyx exited before it listened). */
  readonly failedStarts: string[] = [];
  readonly #generations = Array<number>(REPLICAS).fill(0);

  constructor(project: string, startedAt: number) {
    this.#project = project;
    this.#startedAt = startedAt;
  }

  live(): Replica[] {
    return this.slots.filter((replica): replica is Replica => replica !== null && replica.up);
  }

  async start(slot: number): Promise<Replica> {
    for (let tries = 1; ; tries++) {
      const name = `r${slot + 1}.${++this.#generations[slot]}`;
      let server: RunningServer;
      try {
        server = await startServer(['serve', '-C', this.#project], { env: cleanEnv({ SOAK_REPLICA: name }), timeoutMs: START_TIMEOUT_MS });
      } catch (error) {
        this.failedStarts.push(`${name} at ${seconds(Date.now() - this.#startedAt)} s: ${firstLines((error as Error).message, 6)}`);
        if (tries >= START_TRIES) throw error;
        await sleep(2000);
        continue;
      }
      alyxChildren.add(server.child);
      const replica: Replica = { slot, name, server, agent: new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY }), up: true, stopping: false };
      server.child.once('exit', (code, signal) => {
        alyxChildren.delete(server.child);
        replica.up = false;
        if (!replica.stopping) this.crashes.push({ replica: name, exit: String(signal ?? code), at: Date.now() - this.#startedAt, tail: lastLogLines(server) });
      });
      this.slots[slot] = replica;
      this.all.push(replica);
      return replica;
    }
  }

  async stop(slot: number, signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const replica = this.slots[slot];
    if (!replica) return { code: null, signal: null };
    replica.stopping = true;
    replica.up = false;
    const exit = await replica.server.stop(signal, 30_000);
    replica.agent.destroy();
    return exit;
  }

  async stopAll(): Promise<string[]> {
    const exits = await Promise.all(this.slots.map(async (replica, slot) => (replica && replica.server.child.exitCode === null && replica.server.child.signalCode === null ? this.stop(slot, 'SIGTERM') : null)));
    this.slots.fill(null);
    return exits.filter((exit) => exit !== null).map((exit) => String(exit?.signal ?? exit?.code));
  }

  /** The last resort: every replica still running is SIGKILLed. */
  async kill(): Promise<void> {
    for (const replica of this.all) {
      replica.stopping = true;
      replica.agent.destroy();
      await replica.server.stop('SIGKILL', 10_000);
    }
  }

  /** alyx's warnings and errors, all replicas together, grouped by message: how many, the replicas that logged them, and when (ms after the start). */
  problems(): Map<string, Problem> {
    const byMessage = new Map<string, Problem>();
    for (const replica of this.all) {
      for (const line of replica.server.logs()) {
        if (Number(line.level) < 40) continue;
        const err = line.err as { message?: string; code?: string } | undefined;
        const key = `${Number(line.level) === 40 ? 'warn' : 'error'}: ${String(line.msg)}${err ? ` (${[err.code, err.message].filter(Boolean).join(' ')})` : ''}`.replace(/\d+/g, 'N');
        const at = Date.parse(String(line.time)) - this.#startedAt;
        const entry = byMessage.get(key) ?? { count: 0, replicas: new Set<string>(), first: at, last: at };
        entry.count++;
        entry.replicas.add(replica.name);
        entry.first = Math.min(entry.first, at);
        entry.last = Math.max(entry.last, at);
        byMessage.set(key, entry);
      }
    }
    return byMessage;
  }
}

function lastLogLines(server: RunningServer): string {
  const lines = server.logs().slice(-5).map((line) => JSON.stringify(line));
  return [...lines, server.stderr().slice(-1500)].join('\n');
}

const firstLines = (text: string, count: number): string => text.split('\n').slice(0, count).join(' | ');
const seconds = (ms: number): string => (ms / 1000).toFixed(1);

/** The request id alyx gives a fire time (src/background/scheduler.ts): the same time is the same invocation everywhere. */
function fireRequestId(functionName: string, schedule: string, fireAt: number): string {
  return `schedule-${createHash('sha256').update(`${functionName}\0${schedule}\0${fireAt}`).digest('hex').slice(0, 32)}`;
}

/** Where an invocation ended, as GET /api/invocations/:id said. */
interface Outcome {
  readonly status: string;
  readonly attempts: number;
  readonly code: string | null;
}

const FINAL = new Set(['succeeded', 'dead']);

/** GET /api/invocations/:id for each id, CONCURRENCY at a time, on the live replicas in turn; an id no replica answered is left out. */
async function poll(replicas: Replicas, ids: string[]): Promise<Map<string, Outcome>> {
  const found = new Map<string, Outcome>();
  let cursor = 0;
  let turn = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (cursor < ids.length) {
        const id = ids[cursor++];
        const live = replicas.live();
        if (live.length === 0) return;
        const replica = live[turn++ % live.length];
        try {
          const { status, body } = await getJson(replica.server.url, `/api/invocations/${id}`, 1);
          const envelope = body?.envelope as { error?: { code?: string } } | undefined;
          if (status === 200 && body) found.set(id, { status: String(body.status), attempts: Number(body.attempts), code: envelope?.error?.code ?? null });
          else if (status === 404) found.set(id, { status: 'not found', attempts: 0, code: null });
        } catch {
          // that replica went or was slow: the next round asks again
        }
      }
    }),
  );
  return found;
}

interface Fault {
  readonly what: string;
  /** ms after the run started. */
  readonly at: number;
  readonly accepted: number;
  /** The replica it stopped, if any. */
  readonly replica: string | null;
  /** Invocations the replica was running when the signal went: started there, not answered yet. */
  readonly running: string[];
  readonly note: string;
}

interface SoakFigures {
  sent: number;
  succeeded: number;
  dead: number;
  lost: number;
  wrong: number;
  duplicates: number;
  runTwice: number;
  missed: number;
  expectedFires: number;
  fired: number;
  orphans: number;
  crashes: number;
}

/** The soak with faults; returns its figures after printing them. */
async function soak(kind: StoreKind): Promise<SoakFigures> {
  const store = await openStore(kind);
  const { project, log } = writeProject('alyx-soak-replicas-', store, SOAK_FUNCTIONS);
  const functions = new FunctionLog(log);
  const runId = randomUUID().slice(0, 8);
  const loadAtStart = loadAverage();
  const started = Date.now();
  const deadline = started + MAX_MS;
  const replicas = new Replicas(project, started);
  const faults: Fault[] = [];
  /** Replicas SIGKILLed: an answer their function gave may never have reached the store. */
  const killed = new Set<string>();
  const accepted = new Map<string, { fail: boolean }>();
  let unanswered = 0;
  const refused = new Map<number, number>();
  let resent = 0;
  try {
    for (let slot = 0; slot < REPLICAS; slot++) await replicas.start(slot);
    const allListening = Date.now();
    console.log(`\n[${kind}] ${REPLICAS} replicas listening after ${seconds(allListening - started)} s: ${replicas.live().map((replica) => `${replica.name} ${replica.server.url}`).join(', ')}`);

    // The POSTs: paced at RATE, round-robin; a POST no replica accepted goes to the next one, with the same X-Request-Id, until a 202.
    const sendStart = Date.now();
    let next = 0;
    const sender = async (): Promise<void> => {
      for (;;) {
        const index = next++;
        if (index >= TOTAL) return;
        const due = sendStart + (index / RATE) * 1000;
        if (due > Date.now()) await sleep(due - Date.now());
        const requestId = `rp-${runId}-${index}`;
        const fail = index % FAIL_EVERY === 0;
        const body = JSON.stringify({ i: index, fail });
        for (let tries = 0; ; tries++) {
          if (Date.now() > deadline) throw new Error(`${requestId} was not accepted before the deadline`);
          if (tries > 0 && tries % REPLICAS === 0) await sleep(100);
          const replica = replicas.slots[(index + tries) % REPLICAS];
          if (!replica || !replica.up) continue;
          const { status } = await postAsync(replica.agent, replica.server.url, 'work', requestId, body);
          if (status === 202) {
            if (tries > 0) resent++;
            accepted.set(requestId, { fail });
            break;
          }
          if (status === null) unanswered++;
          else refused.set(status, (refused.get(status) ?? 0) + 1);
        }
      }
    };

    const faultsDone = (async (): Promise<void> => {
      const plan: Array<[number, 'SIGKILL' | 'SIGTERM' | 'NATS', number]> = [
        [0.2, 'SIGKILL', 0],
        [0.45, 'SIGTERM', 1],
      ];
      if (kind === 'nats-cluster') plan.push([0.65, 'NATS', 0]);
      for (const [share, what, target] of plan) {
        await waitFor(() => accepted.size >= share * TOTAL || Date.now() > deadline, MAX_MS, 50);
        const at = Date.now() - started;
        const acceptedAt = accepted.size;
        if (what === 'NATS') {
          const node = (store.nats as NatsServers).nodes[target];
          await node.stop();
          await sleep(NATS_DOWN_MS / 2);
          const ready = await Promise.all(
            replicas.live().map(async (replica) => {
              try {
                return `${replica.name} ${(await getJson(replica.server.url, '/api/ready', 1)).status}`;
              } catch {
                return `${replica.name} no answer`;
              }
            }),
          );
          await sleep(NATS_DOWN_MS / 2);
          await node.start();
          const note = `nats-server ${node.name} stopped for ${seconds(NATS_DOWN_MS)} s; /api/ready half-way: ${ready.join(', ')}`;
          faults.push({ what: `stop of NATS node ${node.name}`, at, accepted: acceptedAt, replica: null, running: [], note });
          console.log(`[${kind}] ${seconds(at)} s, ${acceptedAt} accepted: ${note}`);
          continue;
        }
        const replica = replicas.slots[target] as Replica;
        // A fault is worth its name when the replica is running something.
        await waitFor(() => functions.inFlight(replica.name).length > 0, 5000, 100);
        const running = functions.inFlight(replica.name);
        const signalAt = Date.now() - started;
        const exit = await replicas.stop(target, what);
        if (what === 'SIGKILL') killed.add(replica.name);
        const down = Date.now();
        await sleep(REPLICA_DOWN_MS);
        const again = await replicas.start(target);
        const note = `${replica.name} exited with ${exit.signal ?? exit.code} while running ${running.length} invocation(s); ${again.name} listening ${seconds(Date.now() - down)} s later`;
        faults.push({ what: `${what} of ${replica.name}`, at: signalAt, accepted: acceptedAt, replica: replica.name, running, note });
        console.log(`[${kind}] ${seconds(signalAt)} s, ${acceptedAt} accepted: ${what} — ${note}`);
      }
    })();

    await Promise.all([...Array.from({ length: CONCURRENCY }, sender), faultsDone]);
    const allAccepted = Date.now();
    console.log(`[${kind}] all ${accepted.size} accepted ${seconds(allAccepted - sendStart)} s after the first POST`);

    // The schedules' window: from the first fire time any replica queued, SCHEDULE_SECONDS long.
    const firstFires = (): Map<string, number> => {
      const first = new Map<string, number>();
      for (const replica of replicas.all) {
        for (const line of replica.server.logs()) {
          if (line.function !== 'tick' || typeof line.scheduled_at !== 'string' || typeof line.schedule !== 'string') continue;
          const at = Date.parse(line.scheduled_at);
          if (!first.has(line.schedule) || at < (first.get(line.schedule) as number)) first.set(line.schedule, at);
        }
      }
      return first;
    };
    await waitFor(() => firstFires().size === SCHEDULES.length || Date.now() > deadline, 30_000, 200);
    const windowStart = Math.min(...firstFires().values());
    if (!Number.isFinite(windowStart)) throw new Error('no replica logged a schedule fire');
    const windowEnd = windowStart + SCHEDULE_SECONDS * 1000;
    const expectedFires = new Map<string, { schedule: string; at: number }>();
    for (const [schedule, first] of firstFires()) {
      for (let at = first; at < windowEnd; at += 1000) expectedFires.set(fireRequestId('tick', schedule, at), { schedule, at });
    }

    // Until every accepted invocation and every fire time of the window is final, bounded.
    const outcomes = new Map<string, Outcome>();
    const waitUntil = Math.min(deadline, Math.max(allAccepted, windowEnd) + FINAL_WAIT_MS);
    let lastReport = 0;
    for (;;) {
      const now = Date.now();
      const open = [...accepted.keys(), ...expectedFires.keys()].filter((id) => {
        const outcome = outcomes.get(id);
        if (outcome && FINAL.has(outcome.status)) return false;
        // A fire time no replica queued by now never will be: it was missed.
        return !(expectedFires.has(id) && outcome?.status === 'not found' && now > windowEnd + QUEUED_WITHIN_MS);
      });
      if ((open.length === 0 && now > windowEnd + 3000) || now > waitUntil) break;
      for (const [id, outcome] of await poll(replicas, open)) outcomes.set(id, outcome);
      if (now - lastReport > 15_000) {
        lastReport = now;
        const counts = new Map<string, number>();
        for (const id of open) counts.set(outcomes.get(id)?.status ?? 'unknown', (counts.get(outcomes.get(id)?.status ?? 'unknown') ?? 0) + 1);
        console.log(`[${kind}] ${seconds(now - started)} s: ${open.length} not final yet (${[...counts].map(([status, n]) => `${n} ${status}`).join(', ')})`);
      }
      await sleep(2000);
    }
    const waitedUntil = Date.now();

    // The last stop, then what is left of the run.
    const finalExits = await replicas.stopAll();
    await waitFor(() => processesMentioning(project).length === 0, 5000, 50);
    const orphans = processesMentioning(project);
    functions.refresh();

    // Invocations: outcomes against the starts the function wrote.
    let succeeded = 0;
    let dead = 0;
    const lost: string[] = [];
    let notFound = 0;
    let notFinal = 0;
    const wrong: string[] = [];
    let duplicates = 0;
    const duplicateNotes: string[] = [];
    let sameAttemptTwice = 0;
    const afterSuccess: string[] = [];
    let starts = 0;
    const deadAttempts = new Map<number, number>();
    for (const [id, { fail }] of accepted) {
      const outcome = outcomes.get(id);
      const events = functions.byId.get(id) ?? [];
      const mine = events.filter((event) => event.event === 'start');
      starts += mine.length;
      if (outcome?.status === 'succeeded') succeeded++;
      else if (outcome?.status === 'dead') {
        dead++;
        deadAttempts.set(outcome.attempts, (deadAttempts.get(outcome.attempts) ?? 0) + 1);
      } else if (!outcome || outcome.status === 'not found') notFound++;
      else notFinal++;
      if (!outcome || !FINAL.has(outcome.status)) lost.push(`${id}: ${outcome ? `${outcome.status} after ${outcome.attempts} attempt(s)` : 'no answer'}; starts ${describeStarts(events, started)}`);
      if (outcome && FINAL.has(outcome.status) && outcome.status !== (fail ? 'dead' : 'succeeded')) wrong.push(`${id} (fail ${fail}): ${outcome.status} ${outcome.code ?? ''} after ${outcome.attempts} attempt(s)`);
      // Starts beyond the attempts the store counted, once it counts no more.
      const extra = outcome && FINAL.has(outcome.status) ? Math.max(0, mine.length - outcome.attempts) : 0;
      duplicates += extra;
      if (extra > 0) duplicateNotes.push(`${id}: ${mine.length} starts for ${outcome?.attempts ?? 0} attempt(s): ${describeStarts(events, started)}`);
      if (new Set(mine.map((event) => event.attempt)).size !== mine.length) sameAttemptTwice++;
      if (!fail && startedAfterAnswer(events, killed)) afterSuccess.push(`${id}: ${outcome?.status ?? 'no answer'} after ${outcome?.attempts ?? 0} attempt(s); ${describeStarts(events, started)}`);
    }

    // Fire times: each of the window must have run once.
    const fires = new Map<string, FunctionEvent[]>();
    for (const event of functions.events) {
      if (event.fn !== 'tick' || !event.trigger?.scheduled_at) continue;
      const key = `${event.trigger.schedule}@${Date.parse(event.trigger.scheduled_at)}`;
      fires.set(key, [...(fires.get(key) ?? []), event]);
    }
    let fired = 0;
    const missed: string[] = [];
    let missedQueued = 0;
    for (const [id, { schedule, at }] of expectedFires) {
      if ((fires.get(`${schedule}@${at}`) ?? []).some((event) => event.event === 'start')) fired++;
      else {
        if (outcomes.get(id)?.status !== 'not found') missedQueued++;
        missed.push(`${schedule} ${new Date(at).toISOString()} (${seconds(at - started)} s): ${outcomes.get(id)?.status ?? 'no answer'}`);
      }
    }
    // Run twice: a fire time queued as two invocations, one attempt started twice, or a start after an answer.
    const twice: string[] = [];
    const rerunAfterCut: string[] = [];
    let idMismatch = 0;
    let latest = { delay: 0, note: '' };
    for (const [key, events] of fires) {
      const [schedule, at] = key.split('@');
      const ids = new Set(events.map((event) => event.id));
      if (!ids.has(fireRequestId('tick', schedule, Number(at)))) idMismatch++;
      const mine = events.filter((event) => event.event === 'start');
      for (const event of mine) {
        if (event.at - Number(at) > latest.delay) latest = { delay: event.at - Number(at), note: `${schedule} ${new Date(Number(at)).toISOString()}, attempt ${event.attempt} on ${event.replica}` };
      }
      const again = ids.size > 1 || new Set(mine.map((event) => event.attempt)).size !== mine.length || startedAfterAnswer(events, killed);
      const note = `${schedule} ${new Date(Number(at)).toISOString()}: ${[...ids].join(', ')}; ${describeStarts(events, started)}`;
      if (again) twice.push(note);
      else if (mine.length > 1) rerunAfterCut.push(note);
    }

    const problems = replicas.problems();
    const stops = faults.filter((fault) => fault.replica !== null);
    console.log(
      `\nalyx replicas soak [${kind}]: ${STORE_LABELS[kind]}; ${REPLICAS} × alyx serve (functions.concurrency ${FUNCTION_CONCURRENCY}, server.shutdown_timeout ${SHUTDOWN_TIMEOUT}); ${TOTAL} async invocations at up to ${RATE}/s round-robin over ${CONCURRENCY} connections, every ${FAIL_EVERY}th failing (503, retries ${RETRIES}, timeout ${FUNCTION_TIMEOUT}); 2 interval schedules of 1s; ${os.availableParallelism()} cores, node ${process.version}; load average (1/5/15 min) at start ${loadAtStart}, at end ${loadAverage()}\n`,
    );
    for (const fault of faults) console.log(`fault at ${seconds(fault.at)} s (${fault.accepted} accepted)   ${fault.what}: ${fault.note}`);
    console.log(`sent (answered 202)              ${accepted.size} of ${TOTAL}`);
    console.log(`POSTs unanswered / refused       ${unanswered} / ${[...refused].map(([status, n]) => `${n}×${status}`).join(' ') || 0} (each sent again to the next replica, same X-Request-Id; ${resent} accepted on a resend)`);
    console.log(`succeeded                        ${succeeded}`);
    console.log(`dead                             ${dead} (attempts: ${[...deadAttempts].sort((a, b) => a[0] - b[0]).map(([attempts, n]) => `${n}×${attempts}`).join(', ')})`);
    console.log(`lost                             ${lost.length} (unknown to the store: ${notFound}; not final when the wait ended: ${notFinal})`);
    console.log(`wrong outcome                    ${wrong.length}`);
    console.log(`function starts                  ${starts} (${TOTAL - Math.ceil(TOTAL / FAIL_EVERY) + Math.ceil(TOTAL / FAIL_EVERY) * (RETRIES + 1)} without faults)`);
    console.log(`duplicates (starts > attempts)   ${duplicates}; one attempt started twice: ${sameAttemptTwice}; started again after a success: ${afterSuccess.length}`);
    for (const fault of stops) console.log(`running at the ${fault.what.padEnd(16)} ${fault.running.length}: ${cutOffBy(fault, functions, started)}`);
    console.log(`schedule fire times expected     ${expectedFires.size} (${SCHEDULES.length} schedules × every second of the ${SCHEDULE_SECONDS} s from the first fire, ${new Date(windowStart).toISOString()})`);
    console.log(`run                              ${fired}`);
    console.log(`run twice                        ${twice.length} (run again as the same invocation after a fault cut it off: ${rerunAfterCut.length})`);
    console.log(`missed                           ${missed.length} (never queued: ${missed.length - missedQueued}; queued, not run when the wait ended: ${missedQueued})`);
    console.log(`fire ids not alyx's              ${idMismatch}; latest start after its fire time ${seconds(latest.delay)} s (${latest.note})`);
    console.log(`orphans after the last stop      ${orphans.length} (replicas exited with ${finalExits.join(', ')})`);
    console.log(`replicas that crashed            ${replicas.crashes.length}; starts tried again ${replicas.failedStarts.length}`);
    console.log(`final wait                       ${seconds(waitedUntil - Math.max(allAccepted, windowEnd))} s after the last POST and the window's end (bound ${seconds(FINAL_WAIT_MS)} s)`);
    console.log(`alyx warnings and errors         ${[...problems.values()].reduce((sum, entry) => sum + entry.count, 0)} log lines, the ${replicas.all.length} alyx processes together`);
    for (const [message, { count, replicas: where, first, last }] of problems) console.log(`  alyx ${message}: ${count}× on ${[...where].join(', ')}, from ${seconds(first)} to ${seconds(last)} s`);
    for (const line of lost.slice(0, 20)) console.log(`lost: ${line}`);
    for (const line of wrong.slice(0, 10)) console.log(`wrong: ${line}`);
    for (const line of duplicateNotes.slice(0, 10)) console.log(`duplicate: ${line}`);
    for (const line of afterSuccess.slice(0, 10)) console.log(`started again after a success: ${line}`);
    for (const line of twice.slice(0, 20)) console.log(`run twice: ${line}`);
    for (const line of rerunAfterCut.slice(0, 10)) console.log(`run again after a cut: ${line}`);
    for (const line of missed.slice(0, 20)) console.log(`missed: ${line}`);
    for (const { pid, cmdline } of orphans) console.log(`orphan: pid ${pid} ${cmdline}`);
    for (const crash of replicas.crashes) console.log(`crash: ${crash.replica} exited with ${crash.exit} at ${seconds(crash.at)} s:\n${crash.tail}`);
    for (const line of replicas.failedStarts) console.log(`start failed: ${line}`);
    return {
      sent: accepted.size,
      succeeded,
      dead,
      lost: lost.length + (TOTAL - accepted.size),
      wrong: wrong.length,
      duplicates,
      runTwice: twice.length,
      missed: missed.length,
      expectedFires: expectedFires.size,
      fired,
      orphans: orphans.length,
      crashes: replicas.crashes.length,
    };
  } finally {
    await replicas.kill();
    await closeStore(store);
    if (process.env.SOAK_KEEP) console.log(`kept ${project}`);
    else removeProject(project);
  }
}

/** Each start as `attempt@replica +seconds` (since the run started), ended or not. */
function describeStarts(events: FunctionEvent[], started: number): string {
  return (
    events
      .filter((event) => event.event === 'start')
      .map((start) => {
        const answered = events.some((event) => event.event === 'end' && event.attempt === start.attempt && event.replica === start.replica && event.at >= start.at);
        return `${start.attempt}@${start.replica} +${seconds(start.at - started)}${answered ? '' : ' (no answer)'}`;
      })
      .join(', ') || 'none'
  );
}

/**
 * Whether an attempt started after an earlier one had answered: for a function that always
 * succeeds, a second run. An answer given under a replica that was SIGKILLed may never have
 * reached the store: running again after it is at-least-once, not a second run.
 */
function startedAfterAnswer(events: FunctionEvent[], killed: ReadonlySet<string>): boolean {
  const firstEnd = events.find((event) => event.event === 'end' && !killed.has(event.replica));
  return firstEnd !== undefined && events.some((event) => event.event === 'start' && event.at > firstEnd.at);
}

/** What a fault cut off (running on the replica, never answered there), and when it started again elsewhere. */
function cutOffBy(fault: Fault, functions: FunctionLog, started: number): string {
  const cut = fault.running.filter((id) => {
    const events = functions.byId.get(id) ?? [];
    return events.some((start) => start.event === 'start' && start.replica === fault.replica && !events.some((end) => end.event === 'end' && end.replica === fault.replica && end.attempt === start.attempt));
  });
  const delays = cut
    .map((id) => (functions.byId.get(id) ?? []).find((event) => event.event === 'start' && event.at - started > fault.at && event.replica !== fault.replica))
    .map((event) => (event ? event.at - started - fault.at : null));
  const done = delays.filter((delay): delay is number => delay !== null).sort((a, b) => a - b);
  const again = done.length === 0 ? '' : `, ${seconds(done[0])} to ${seconds(done[done.length - 1])} s after the signal`;
  const each = cut.slice(0, 10).map((id) => `\n  cut off: ${id}: ${describeStarts(functions.byId.get(id) ?? [], started)}`);
  return `${cut.length} cut off (never answered there), ${done.length} of them started again elsewhere${again}${each.join('')}`;
}

interface Rate {
  readonly perSecond: number;
  readonly seconds: number;
  /** The invocations of the batch the store did not show as succeeded. */
  readonly failed: string[];
}

/** The timed phase: THROUGHPUT_N quick invocations through 1 replica, then through 3, on a store of its own. */
async function throughput(kind: StoreKind): Promise<{ one: Rate; three: Rate }> {
  const store = await openStore(kind);
  const { project, log } = writeProject('alyx-soak-replicas-rate-', store, QUICK_FUNCTIONS);
  const functions = new FunctionLog(log);
  const started = Date.now();
  const deadline = started + MAX_MS;
  const replicas = new Replicas(project, started);
  const runId = randomUUID().slice(0, 8);
  try {
    const batch = async (count: number): Promise<Rate> => {
      for (let slot = 0; slot < count; slot++) await replicas.start(slot);
      const live = replicas.live();
      const send = async (ids: string[]): Promise<void> => {
        let cursor = 0;
        await Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            while (cursor < ids.length) {
              const index = cursor++;
              for (let tries = 0; ; tries++) {
                if (Date.now() > deadline) throw new Error(`${ids[index]} was not accepted before the deadline`);
                const replica = live[(index + tries) % live.length];
                if ((await postAsync(replica.agent, replica.server.url, 'quick', ids[index], '{}')).status === 202) break;
                await sleep(50);
              }
            }
          }),
        );
      };
      const ended = (ids: string[]): boolean => {
        functions.refresh();
        return ids.every((id) => functions.byId.has(id));
      };
      // Each replica's worker warm before the clock starts.
      const warm = live.flatMap((replica) => Array.from({ length: WARM_UP }, (_, i) => `warm-${runId}-${replica.name}-${i}`));
      for (const [index, id] of warm.entries()) {
        const replica = live[Math.floor(index / WARM_UP)];
        await postAsync(replica.agent, replica.server.url, 'quick', id, '{}');
      }
      await waitFor(() => ended(warm), 60_000, 100);
      const ids = Array.from({ length: THROUGHPUT_N }, (_, i) => `rate-${runId}-${count}-${i}`);
      const t0 = performance.now();
      await send(ids);
      if (!(await waitFor(() => ended(ids), Math.max(0, deadline - Date.now()), 20))) throw new Error(`the ${count}-replica batch did not end before the deadline`);
      const elapsed = (performance.now() - t0) / 1000;
      // Untimed: each of them succeeded, as the store says.
      const outcomes = new Map<string, Outcome>();
      const checkUntil = Math.min(deadline, Date.now() + 60_000);
      for (;;) {
        const open = ids.filter((id) => outcomes.get(id)?.status !== 'succeeded');
        if (open.length === 0 || Date.now() > checkUntil) break;
        for (const [id, outcome] of await poll(replicas, open)) outcomes.set(id, outcome);
        await sleep(1000);
      }
      await replicas.stopAll();
      const failed = ids
        .filter((id) => outcomes.get(id)?.status !== 'succeeded')
        .map((id) => {
          const outcome = outcomes.get(id);
          const runs = (functions.byId.get(id) ?? []).map((event) => `attempt ${event.attempt} on ${event.replica} +${seconds(event.at - started)} s`).join(', ');
          return `${id}: ${outcome ? `${outcome.status} after ${outcome.attempts} attempt(s)` : 'no answer'} 60 s after the batch; ran ${runs}`;
        });
      return { perSecond: THROUGHPUT_N / elapsed, seconds: elapsed, failed };
    };
    const one = await batch(1);
    const three = await batch(REPLICAS);
    return { one, three };
  } finally {
    await replicas.kill();
    await closeStore(store);
    removeProject(project);
  }
}

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'index.js'))) throw new Error('dist/ is missing: run "npm run build" first');
  const runs = runsWanted(process.argv.slice(2));
  const results: Array<{ kind: StoreKind; figures: SoakFigures; rates: { one: Rate; three: Rate } }> = [];
  for (const kind of runs) {
    let figures: SoakFigures;
    let rates: { one: Rate; three: Rate };
    try {
      figures = await soak(kind);
      rates = await throughput(kind);
    } catch (error) {
      // A run that could not finish says why; the next run still runs.
      console.error(`[${kind}] the run failed:`, error);
      process.exitCode = 1;
      continue;
    }
    console.log(
      `invocations per second           1 replica ${fmt(rates.one.perSecond)} (${fmt(rates.one.seconds)} s), ${REPLICAS} replicas ${fmt(rates.three.perSecond)} (${fmt(rates.three.seconds)} s): ×${(rates.three.perSecond / rates.one.perSecond).toFixed(2)} (${THROUGHPUT_N} quick reuse invocations each, async, from the first POST to the last run; not succeeded: ${rates.one.failed.length} / ${rates.three.failed.length})`,
    );
    for (const line of [...rates.one.failed, ...rates.three.failed].slice(0, 20)) console.log(`not succeeded: ${line}`);
    results.push({ kind, figures, rates });
  }
  console.log('\nrun            sent  succeeded  dead  lost  duplicates  fire times  run  run twice  missed  orphans  crashes  inv/s 1 → 3');
  for (const { kind, figures: f, rates } of results) {
    console.log(
      `${kind.padEnd(13)} ${String(f.sent).padStart(5)}  ${String(f.succeeded).padStart(9)}  ${String(f.dead).padStart(4)}  ${String(f.lost).padStart(4)}  ${String(f.duplicates).padStart(10)}  ${String(f.expectedFires).padStart(10)}  ${String(f.fired).padStart(3)}  ${String(f.runTwice).padStart(9)}  ${String(f.missed).padStart(6)}  ${String(f.orphans).padStart(7)}  ${String(f.crashes).padStart(7)}  ${fmt(rates.one.perSecond)} → ${fmt(rates.three.perSecond)} (×${(rates.three.perSecond / rates.one.perSecond).toFixed(2)})`,
    );
    if (f.lost > 0 || f.runTwice > 0 || f.missed > 0 || f.orphans > 0) process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
