/**
 * Soak of background invocations (SPEC §11): 2,000 async invocations of a mix of node
 * functions (fast, slow, failing once, failing always, timing out) queued over HTTP while alyx
 * is SIGKILLed twice and SIGTERMed once, each time started again on the same project. Every
 * function appends `request_id attempt` to a log at each start, so that starts can be counted.
 * At the end every invocation must be succeeded or dead as its function dictates, and no process
 * of the run may be left. Prints sent, succeeded, dead, lost, duplicates (extra starts beyond
 * the retries, and how many of those were running at a kill), wrong outcomes, orphans and the
 * throughput; exits 1 when anything was lost, ended wrongly, or a process was left.
 *
 *   npm run build && npm run soak:background   # SOAK_INVOCATIONS=2000 SOAK_RATE=25 by default
 *
 * Talks to 127.0.0.1 only; bounded by SOAK_MAX_SECONDS (default 600).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { cleanEnv, REPO_ROOT } from '../__tests__/helpers/cli';
import { waitFor } from '../__tests__/helpers/processes';
import { startServer, type RunningServer } from '../__tests__/helpers/server';
import { fmt, getJson, linkHelper, postAsync, processesMentioning, sleep, writeFunctions } from './soak-common';
import { loadAverage } from './turns';

const TOTAL = Number(process.env.SOAK_INVOCATIONS ?? 2000);
/** POSTs in flight at once. */
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 8);
/** Invocations queued per second at most, so that the queueing lasts through the kills. */
const RATE = Number(process.env.SOAK_RATE ?? 25);
const MAX_MS = Number(process.env.SOAK_MAX_SECONDS ?? 600) * 1000;
/** The manifests' `retries` for the functions that fail. */
const RETRIES = 2;
/** Short, so that a SIGTERM cuts off slow invocations and they go back to the queue. */
const SHUTDOWN_TIMEOUT = '400ms';
/** How long alyx stays down after each kill, so that POSTs meet a closed port. */
const DOWN_MS = 1500;
const START_TIMEOUT_MS = 30_000;

type Expected = 'succeeded' | 'dead';

/** A kind of function: its code, how its invocations must end, and how many starts that takes without faults. */
interface Kind {
  readonly name: string;
  readonly weight: number;
  readonly expected: Expected;
  /** The error code of a dead one's last attempt. */
  readonly code?: string;
  readonly starts: number;
  readonly files: Record<string, string>;
}

/** A one-shot node function: reads the request, logs its start, then `body` (which has request, attempt and reply). */
const oneShot = (body: string): string => `const fs = require('node:fs');
let data = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => (data += chunk));
process.stdin.on('end', () => {
  const request = JSON.parse(data);
  const attempt = request.context.attempt;
  fs.appendFileSync(process.env.SOAK_LOG, request.request_id + ' ' + attempt + ' ' + Date.now() + '\\n');
  const reply = (response) => process.stdout.write(JSON.stringify({ request_id: request.request_id, ...response }) + '\\n');
  ${body}
});
`;
const OK = "reply({ success: true, output: { ok: true, attempt } });";
const failing = (retries: number, extra = ''): string => `retries: ${retries}\n${extra}`;

const KINDS: Kind[] = [
  { name: 'fast', weight: 36, expected: 'succeeded', starts: 1, files: { 'index.js': oneShot(OK) } },
  {
    name: 'fast-reuse',
    weight: 20,
    expected: 'succeeded',
    starts: 1,
    files: {
      'index.js': `const fs = require('node:fs');
const { handler } = require('alyx/handler');

module.exports = handler(async (input, ctx) => {
  fs.appendFileSync(process.env.SOAK_LOG, ctx.requestId + ' ' + ctx.attempt + ' ' + Date.now() + '\\n');
  return { ok: true, attempt: ctx.attempt };
});
`,
      'manifest.yaml': 'reuse: true\n',
    },
  },
  { name: 'slow', weight: 12, expected: 'succeeded', starts: 1, files: { 'index.js': oneShot(`setTimeout(() => ${OK.slice(0, -1)}, 300 + Math.floor(Math.random() * 500));`) } },
  {
    name: 'flaky-exit',
    weight: 6,
    expected: 'succeeded',
    starts: 2,
    files: { 'index.js': oneShot(`if (attempt === 1) process.exit(3);\n  ${OK}`), 'manifest.yaml': failing(RETRIES) },
  },
  {
    name: 'flaky-500',
    weight: 6,
    expected: 'succeeded',
    starts: 2,
    files: {
      'index.js': oneShot(`if (attempt === 1) reply({ success: false, error: { code: 'FIRST_FAILS', message: 'the first attempt fails', status: 500 } });\n  else ${OK}`),
      'manifest.yaml': failing(RETRIES),
    },
  },
  {
    name: 'fails-always',
    weight: 8,
    expected: 'dead',
    code: 'ALWAYS_FAILS',
    starts: RETRIES + 1,
    files: { 'index.js': oneShot("reply({ success: false, error: { code: 'ALWAYS_FAILS', message: 'every attempt fails', status: 503 } });"), 'manifest.yaml': failing(RETRIES) },
  },
  {
    name: 'times-out',
    weight: 8,
    expected: 'dead',
    code: 'TIMEOUT',
    starts: RETRIES + 1,
    files: { 'index.js': oneShot(`setTimeout(() => ${OK.slice(0, -1)}, 5000);`), 'manifest.yaml': failing(RETRIES, 'timeout: 500ms\n') },
  },
  {
    name: 'fails-422',
    weight: 4,
    expected: 'dead',
    code: 'BAD_INPUT',
    starts: 1,
    files: { 'index.js': oneShot("reply({ success: false, error: { code: 'BAD_INPUT', message: 'final', status: 422 } });"), 'manifest.yaml': failing(RETRIES) },
  },
];

/** The mix, spread evenly: invocation i takes slot (i * 37) mod 100 of a 100-slot table. */
const TABLE = KINDS.flatMap((kind) => Array<Kind>(kind.weight).fill(kind));
if (TABLE.length !== 100) throw new Error(`weights add up to ${TABLE.length}, not 100`);
const kindFor = (index: number): Kind => TABLE[(index * 37) % 100];

function writeProject(): { project: string; log: string } {
  const project = fs.mkdtempSync(path.join(os.tmpdir(), 'alyx-soak-bg-'));
  const log = path.join(project, 'starts.log');
  fs.writeFileSync(
    path.join(project, 'alyx.yaml'),
    `server:\n  shutdown_timeout: ${SHUTDOWN_TIMEOUT}\nfunctions:\n  concurrency: 16\n  env:\n    SOAK_LOG: ${log}\n`,
  );
  // The reuse function's helper.
  linkHelper(project);
  writeFunctions(project, Object.fromEntries(KINDS.map((kind) => [kind.name, kind.files])));
  return { project, log };
}

/** The state file, read by a connection of this process's own (alyx's WAL allows readers beside its writer). */
class StateReader {
  readonly #file: string;
  #db: Database.Database | null = null;

  constructor(file: string) {
    this.#file = file;
  }

  #open(): Database.Database | null {
    if (!this.#db && fs.existsSync(this.#file)) this.#db = new Database(this.#file, { readonly: true, fileMustExist: true, timeout: 5000 });
    return this.#db;
  }

  /** Invocations per status. */
  counts(): Record<string, number> {
    const rows = (this.#open()?.prepare('SELECT status, COUNT(*) AS n FROM invocations GROUP BY status').all() ?? []) as Array<{ status: string; n: number }>;
    return Object.fromEntries(rows.map((row) => [row.status, row.n]));
  }

  /** Invocations running; with `pid`, those claimed by the alyx of that pid (its claims name it: host:pid:random). */
  running(pid?: number): string[] {
    const rows = (this.#open()?.prepare(`SELECT request_id, owner FROM invocations WHERE status = 'running'`).all() ?? []) as Array<{ request_id: string; owner: string | null }>;
    return rows.filter((row) => pid === undefined || row.owner?.split(':')[1] === String(pid)).map((row) => row.request_id);
  }

  /** When the first invocation was queued and the last one ended, ms. */
  span(): { first: number; last: number } {
    return this.#open()?.prepare('SELECT MIN(created_at) AS first, MAX(finished_at) AS last FROM invocations').get() as { first: number; last: number };
  }

  close(): void {
    this.#db?.close();
    this.#db = null;
  }
}

/** An alyx serving the project, with what the soak keeps of it. */
interface Alyx {
  server: RunningServer;
  agent: http.Agent;
}

interface Fault {
  readonly what: 'SIGKILL' | 'SIGTERM';
  /** Invocations running when alyx went: SIGKILL, the claims the state file holds after; SIGTERM, those running just before and those it sent back to the queue. */
  readonly running: string[];
  /** Those it cut off: SIGKILL, all of them; SIGTERM, those it sent back to the queue. */
  readonly cutOff: string[];
  /** Processes of the project still alive 5 s after a SIGKILL (the watchdog ends them). */
  left: number;
  /** When the next alyx listened, and how long after that the claims of the killed one were back in the queue (null: not within 30 s). */
  restartedAt: number;
  reclaimMs: number | null;
  exit: { code: number | null; signal: NodeJS.Signals | null };
  downMs: number;
}

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'index.js'))) throw new Error('dist/ is missing: run "npm run build" first');
  const { project, log } = writeProject();
  const state = new StateReader(path.join(project, '.alyx', 'state.db'));
  const runId = randomUUID().slice(0, 8);
  const loadAtStart = loadAverage();
  const started = Date.now();
  const deadline = started + MAX_MS;
  const servers: Alyx[] = [];
  const serve = async (): Promise<Alyx> => {
    const server = await startServer(['serve', '-C', project], { env: cleanEnv(), timeoutMs: START_TIMEOUT_MS });
    const alyx = { server, agent: new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY }) };
    servers.push(alyx);
    return alyx;
  };
  let current: Alyx = await serve();
  const faults: Fault[] = [];
  const accepted = new Map<string, Kind>();
  let unanswered = 0;
  let refused = 0;
  let resent = 0;
  try {
    // The queueing: bounded concurrency, paced at RATE, each id POSTed again (same X-Request-Id) until a 202.
    let next = 0;
    const sender = async (): Promise<void> => {
      for (;;) {
        const index = next++;
        if (index >= TOTAL) return;
        const due = started + (index / RATE) * 1000;
        if (due > Date.now()) await sleep(due - Date.now());
        const kind = kindFor(index);
        const requestId = `bg-${runId}-${index}`;
        for (let first = true; ; first = false) {
          if (Date.now() > deadline) throw new Error(`${requestId} was not accepted before the deadline`);
          // While alyx is down, `current` is the one that went: the POST meets a closed port and is sent again.
          const alyx = current;
          const { status } = await postAsync(alyx.agent, alyx.server.url, kind.name, requestId, '{"n": 1}');
          if (status === 202) {
            if (!first) resent++;
            accepted.set(requestId, kind);
            break;
          }
          if (status === null) unanswered++;
          else refused++;
          await sleep(100);
        }
      }
    };

    // The faults: at a quarter, a half and three quarters of the queueing, while invocations run.
    const faultsDone = (async (): Promise<void> => {
      for (const [share, what] of [
        [0.25, 'SIGKILL'],
        [0.5, 'SIGKILL'],
        [0.75, 'SIGTERM'],
      ] as const) {
        await waitFor(() => accepted.size >= share * TOTAL || Date.now() > deadline, MAX_MS, 50);
        await waitFor(() => state.running().length > 0, 5000, 20);
        const alyx = current;
        const down = Date.now();
        const before = state.running();
        const exit = await alyx.server.stop(what, 30_000);
        // After a SIGKILL the state file still shows its claims; after a SIGTERM alyx's log names what it sent back to the queue.
        const cutOff = what === 'SIGKILL' ? state.running() : alyx.server.logs().filter((line) => line.code === 'SHUTTING_DOWN').map((line) => String(line.request_id));
        const running = what === 'SIGKILL' ? cutOff : [...new Set([...before, ...cutOff])];
        const fault: Fault = { what, running, cutOff, left: 0, exit, downMs: 0, restartedAt: 0, reclaimMs: null };
        if (what === 'SIGKILL') {
          await waitFor(() => processesMentioning(project).length === 0, 5000, 100);
          fault.left = processesMentioning(project).length;
        }
        faults.push(fault);
        await sleep(Math.max(0, DOWN_MS - (Date.now() - down)));
        current = await serve();
        alyx.agent.destroy();
        fault.restartedAt = Date.now();
        fault.downMs = fault.restartedAt - down;
        const deadPid = alyx.server.child.pid as number;
        if (await waitFor(() => state.running(deadPid).length === 0, 30_000, 20)) fault.reclaimMs = Date.now() - fault.restartedAt;
        console.log(`${what} at ${accepted.size} accepted: ${running.length} running, ${cutOff.length} cut off; alyx exited with ${exit.signal ?? exit.code}; down ${fault.downMs} ms`);
      }
    })();

    await Promise.all([...Array.from({ length: CONCURRENCY }, sender), faultsDone]);
    const acceptedAt = Date.now();

    // Until every invocation has ended, bounded.
    const open = (): number => {
      const counts = state.counts();
      return (counts.queued ?? 0) + (counts.running ?? 0) + (counts.failed ?? 0);
    };
    let lastReport = 0;
    while (open() > 0 && Date.now() < deadline) {
      if (Date.now() - lastReport > 15_000) {
        lastReport = Date.now();
        console.log(`waiting: ${JSON.stringify(state.counts())}`);
      }
      await sleep(500);
    }
    const span = state.span();

    // The verdict, from the HTTP API.
    const alyx = current;
    const outcomes = new Map<string, { status: string; attempts: number; code: string | null }>();
    const ids = [...accepted.keys()];
    let cursor = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (cursor < ids.length) {
          const id = ids[cursor++];
          const { status, body } = await getJson(alyx.server.url, `/api/invocations/${id}`);
          const envelope = body?.envelope as { error?: { code?: string } } | undefined;
          outcomes.set(id, status === 200 && body ? { status: String(body.status), attempts: Number(body.attempts), code: envelope?.error?.code ?? null } : { status: `HTTP ${status}`, attempts: 0, code: null });
        }
      }),
    );

    // The last stop, then what is left of the run.
    const finalExit = await alyx.server.stop('SIGTERM', 30_000);
    alyx.agent.destroy();
    await waitFor(() => processesMentioning(project).length === 0, 2000, 50);
    const orphans = processesMentioning(project);
    state.close();

    // Starts per invocation, from the functions' own log.
    const starts = new Map<string, number[]>();
    const startTimes = new Map<string, number[]>();
    for (const line of fs.readFileSync(log, 'utf8').split('\n')) {
      if (!line) continue;
      const [id, attempt, at] = line.split(' ');
      starts.set(id, [...(starts.get(id) ?? []), Number(attempt)]);
      startTimes.set(id, [...(startTimes.get(id) ?? []), Number(at)]);
    }
    // How long after the restart an invocation cut off by a fault started again.
    const rerunDelays = (fault: Fault): number[] =>
      fault.cutOff
        .map((id) => (startTimes.get(id) ?? []).find((at) => at >= fault.restartedAt))
        .filter((at): at is number => at !== undefined)
        .map((at) => (at - fault.restartedAt) / 1000)
        .sort((a, b) => a - b);
    const killed = new Set(faults.filter((fault) => fault.what === 'SIGKILL').flatMap((fault) => fault.running));
    const termed = new Set(faults.filter((fault) => fault.what === 'SIGTERM').flatMap((fault) => fault.running));
    let succeeded = 0;
    let dead = 0;
    let lost = 0;
    const wrong: string[] = [];
    let duplicates = 0;
    let duplicatesKilled = 0;
    let duplicatesTermed = 0;
    const unexplained: string[] = [];
    let sameAttemptTwice = 0;
    const perKind = new Map<string, { n: number; ok: number; starts: number }>();
    for (const [id, kind] of accepted) {
      const outcome = outcomes.get(id) as { status: string; attempts: number; code: string | null };
      const mine = starts.get(id) ?? [];
      const tally = perKind.get(kind.name) ?? { n: 0, ok: 0, starts: 0 };
      tally.n++;
      tally.starts += mine.length;
      if (outcome.status === 'succeeded') succeeded++;
      else if (outcome.status === 'dead') dead++;
      else lost++;
      const right = outcome.status === kind.expected && (kind.expected === 'succeeded' || outcome.code === kind.code);
      if (right) tally.ok++;
      else if (outcome.status === 'succeeded' || outcome.status === 'dead') wrong.push(`${id} (${kind.name}): ${outcome.status} ${outcome.code ?? ''} after ${outcome.attempts} attempt(s)`);
      perKind.set(kind.name, tally);
      if (new Set(mine).size !== mine.length) sameAttemptTwice++;
      const extra = Math.max(0, mine.length - kind.starts);
      duplicates += extra;
      if (extra > 0) {
        if (killed.has(id)) duplicatesKilled += extra;
        else if (termed.has(id)) duplicatesTermed += extra;
        else unexplained.push(`${id} (${kind.name}): started ${mine.length} times (attempts ${mine.join(', ')}), ${outcome.status} after ${outcome.attempts}`);
      }
    }
    const totalStarts = [...starts.values()].reduce((sum, list) => sum + list.length, 0);
    const seconds = (span.last - span.first) / 1000;
    const downS = faults.reduce((sum, fault) => sum + fault.downMs, 0) / 1000;
    const problems = servers.flatMap((each) => each.server.logs()).filter((line) => Number(line.level) >= 40);

    console.log(
      `\nalyx background soak: ${TOTAL} async invocations queued at up to ${RATE}/s over ${CONCURRENCY} connections; SIGKILL at 25% and 50% of the queueing, SIGTERM at 75% (server.shutdown_timeout ${SHUTDOWN_TIMEOUT}); functions.concurrency 16 (8 background slots); ${os.availableParallelism()} cores, node ${process.version}; load average (1/5/15 min) at start ${loadAtStart}, at end ${loadAverage()}\n`,
    );
    console.log(`sent (answered 202)          ${accepted.size}`);
    console.log(`POSTs unanswered / refused   ${unanswered} / ${refused} (each sent again with the same X-Request-Id; ${resent} invocations accepted on a resend)`);
    console.log(`succeeded                    ${succeeded}`);
    console.log(`dead                         ${dead}`);
    console.log(`lost                         ${lost}`);
    console.log(`wrong outcome                ${wrong.length}`);
    console.log(`function starts              ${totalStarts} (${TABLE.reduce((sum, kind) => sum + kind.starts, 0) * (TOTAL / 100)} without faults)`);
    console.log(`duplicates (extra starts)    ${duplicates}: ${duplicatesKilled} on invocations running at a SIGKILL, ${duplicatesTermed} on ones running at the SIGTERM, ${unexplained.length} unexplained`);
    console.log(`running at each fault        ${faults.map((fault) => `${fault.what} ${fault.running.length} (${fault.cutOff.length} cut off)`).join(', ')}`);
    console.log(`same attempt started twice   ${sameAttemptTwice}`);
    console.log(`claims back in the queue     ${faults.filter((fault) => fault.what === 'SIGKILL').map((fault) => (fault.reclaimMs === null ? 'not within 30 s' : `${fault.reclaimMs} ms`)).join(', ')} after the restart (the killed alyx's claims, by its pid)`);
    for (const [index, fault] of faults.entries()) {
      const delays = rerunDelays(fault);
      if (delays.length > 0) console.log(`cut off by fault ${index + 1} (${fault.what}): ${fault.cutOff.length}, ${delays.length} started again ${fmt(delays[0])} to ${fmt(delays[delays.length - 1])} s after the restart (median ${fmt(delays[Math.floor(delays.length / 2)])} s)`);
    }
    console.log(`left 5 s after each SIGKILL  ${faults.filter((fault) => fault.what === 'SIGKILL').map((fault) => fault.left).join(', ')}`);
    console.log(`orphans after the last stop  ${orphans.length} (alyx exited with ${finalExit.signal ?? finalExit.code})`);
    console.log(`throughput                   ${fmt(TOTAL / seconds)} invocations/s, ${fmt(totalStarts / seconds)} starts/s (${fmt(seconds)} s from the first queued to the last ended, ${fmt(downS)} s of it with alyx down)`);
    console.log(`all accepted after           ${fmt((acceptedAt - started) / 1000)} s`);
    console.log(`alyx warnings and errors     ${problems.length} log lines, the ${servers.length} alyx processes together`);
    console.log('\nfunction       invocations  as expected  starts');
    for (const kind of KINDS) {
      const tally = perKind.get(kind.name) ?? { n: 0, ok: 0, starts: 0 };
      console.log(`${kind.name.padEnd(14)} ${String(tally.n).padStart(11)}  ${String(tally.ok).padStart(11)}  ${String(tally.starts).padStart(6)}`);
    }
    for (const line of wrong.slice(0, 10)) console.log(`wrong: ${line}`);
    for (const line of unexplained.slice(0, 10)) console.log(`unexplained duplicate: ${line}`);
    for (const { pid, cmdline } of orphans) console.log(`orphan: pid ${pid} ${cmdline}`);
    const byMessage = new Map<string, number>();
    for (const line of problems) {
      const key = `${Number(line.level) === 40 ? 'warn' : 'error'}: ${String(line.msg).replace(/\d+/g, 'N')}`;
      byMessage.set(key, (byMessage.get(key) ?? 0) + 1);
    }
    for (const [message, count] of byMessage) console.log(`alyx ${message} (${count}×)`);
    if (lost > 0 || orphans.length > 0 || wrong.length > 0 || accepted.size < TOTAL) process.exitCode = 1;
  } finally {
    state.close();
    for (const alyx of servers) {
      alyx.agent.destroy();
      await alyx.server.stop('SIGKILL', 10_000);
    }
    if (process.exitCode !== 1 || !process.env.SOAK_KEEP) fs.rmSync(project, { recursive: true, force: true });
    else console.log(`kept ${project}`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
