/**
 * Background invocations through the store against synchronous ones (SPEC §11): a trivial node
 * function with `reuse: true`, written with alyx's helper, under `functions.concurrency: 16`.
 *   sync:       N requests to POST /api/functions/trivial, 8 at a time (autocannon), timed from
 *               the first request to the last answer;
 *   background: N invocations queued in the state file, which the worker runs with its half of
 *               the limit (8 slots), timed from the first started_at to the last finished_at.
 * The background batch is written into the state file by this process, with the store's own
 * enqueue (src/state/sqlite-store.ts, as `alyx invoke --async` writes it), while the same alyx
 * keeps running: every invocation of a batch is due at one moment just after the batch is
 * written, so the worker finds the whole batch queued and the writing is not in the window.
 * The two take turns over several rounds, the order turning each round; it prints each round,
 * the median ratio background/sync against the target of 0.5, and alyx's own CPU per invocation.
 *
 *   npm run bench:background                 # builds first; BENCH_N=2000 BENCH_ROUNDS=5 by default
 *   BENCH_PROFILE=1 npm run bench:background  # then a V8 profile of alyx running one background batch
 *   BENCH_REUSE=0 BENCH_N=200                 # the same function without reuse: a process per call
 *
 * Talks to 127.0.0.1 only; every wait is bounded.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import Database from 'better-sqlite3';
import { SqliteStore } from '../src/state/sqlite-store';
import { REPO_ROOT } from '../__tests__/helpers/cli';
import { waitFor } from '../__tests__/helpers/processes';
import { fmt, loadAverage, processCpuMs, serveAlyx, stop, type Server } from './turns';
import { percentile } from './stats';

const N = Number(process.env.BENCH_N ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONNECTIONS = 8;
const CONCURRENCY_LIMIT = 16;
const TARGET = 0.5;
/** How long after the start of a batch's writing its invocations become due. */
const BATCH_LEAD_MS = 1500;
const BATCH_DEADLINE_MS = 120_000;
const PROFILE_TOP = 12;
const REUSE = process.env.BENCH_REUSE !== '0';

const FUNCTION = "const { handler } = require('alyx/handler');\n\nmodule.exports = handler(async (input) => ({ hello: input.name ?? 'world' }));\n";

function writeProject(): string {
  const project = fs.mkdtempSync(path.join(os.tmpdir(), 'alyx-bench-background-'));
  fs.writeFileSync(path.join(project, 'alyx.yaml'), `functions:\n  concurrency: ${CONCURRENCY_LIMIT}\n`);
  fs.mkdirSync(path.join(project, 'node_modules'));
  fs.symlinkSync(REPO_ROOT, path.join(project, 'node_modules', 'alyx'), 'dir');
  fs.mkdirSync(path.join(project, 'functions', 'trivial'), { recursive: true });
  fs.writeFileSync(path.join(project, 'functions', 'trivial', 'index.js'), FUNCTION);
  if (REUSE) fs.writeFileSync(path.join(project, 'functions', 'trivial', 'manifest.yaml'), 'reuse: true\n');
  return project;
}

interface Cell {
  /** Invocations per second. */
  rate: number;
  seconds: number;
  /** alyx's own CPU per invocation, ms. */
  cpuMs: number;
  errors: number;
}

/** N synchronous requests, CONNECTIONS at a time; the time ends at the last answer. */
function syncCell(server: Server, amount: number): Promise<Cell> {
  const pid = server.child.pid as number;
  const cpuBefore = processCpuMs(pid);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let last = started;
    const instance = autocannon(
      { url: server.url('trivial'), method: 'POST', body: '{"name": "bench"}', headers: { 'content-type': 'application/json' }, connections: CONNECTIONS, amount, sampleInt: 100, timeout: 30 },
      (error, result) => {
        if (error) return reject(error);
        const seconds = (last - started) / 1000;
        resolve({ rate: amount / seconds, seconds, cpuMs: (processCpuMs(pid) - cpuBefore) / amount, errors: result.errors + result.non2xx + result.timeouts });
      },
    );
    instance.on('response', () => (last = performance.now()));
  });
}

/** The state file as this process sees it: the store's enqueue to write, a read-only connection to time. */
class StateFile {
  readonly store: SqliteStore;
  readonly #reader: Database.Database;
  #batch = 0;

  constructor(file: string) {
    this.store = new SqliteStore({ file, resultTtlMs: 24 * 3600_000 });
    this.#reader = new Database(file, { readonly: true, fileMustExist: true });
  }

  /**
   * Queues `amount` invocations, all due BATCH_LEAD_MS from now (the store's `now` is their
   * creation and due time), and returns that time, which marks the batch.
   */
  async queue(amount: number): Promise<{ dueAt: number; writeMs: number }> {
    const batch = ++this.#batch;
    const dueAt = Date.now() + BATCH_LEAD_MS;
    const started = performance.now();
    for (let i = 0; i < amount; i++) {
      await this.store.enqueue({ requestId: `batch-${batch}-${i}`, function: 'trivial', input: { name: 'bench' }, trigger: { type: 'async' }, callbackUrl: null }, dueAt);
    }
    const writeMs = performance.now() - started;
    if (Date.now() >= dueAt) throw new Error(`writing ${amount} invocations took ${fmt(writeMs, 0)} ms, past their due time: raise BATCH_LEAD_MS`);
    return { dueAt, writeMs };
  }

  /** How many of the batch have ended, how many succeeded, and its first start and last end. */
  batch(dueAt: number): { ended: number; succeeded: number; first: number | null; last: number | null } {
    return this.#reader
      .prepare(
        `SELECT COUNT(*) FILTER (WHERE status IN ('succeeded', 'dead')) AS ended, COUNT(*) FILTER (WHERE status = 'succeeded') AS succeeded,
           MIN(started_at) AS first, MAX(finished_at) AS last FROM invocations WHERE created_at = ?`,
      )
      .get(dueAt) as { ended: number; succeeded: number; first: number | null; last: number | null };
  }

  async close(): Promise<void> {
    this.#reader.close();
    await this.store.close();
  }
}

/** N background invocations through the store: from the first started_at to the last finished_at. */
async function backgroundCell(server: Server, state: StateFile, amount: number): Promise<Cell & { writeMs: number }> {
  const pid = server.child.pid as number;
  const { dueAt, writeMs } = await state.queue(amount);
  const cpuBefore = processCpuMs(pid);
  // Looked at every 100 ms: the look is one query of this process, next to alyx's work.
  const ended = await waitFor(() => state.batch(dueAt).ended === amount, BATCH_DEADLINE_MS + BATCH_LEAD_MS, 100);
  const cpuMs = (processCpuMs(pid) - cpuBefore) / amount;
  const { succeeded, first, last } = state.batch(dueAt);
  if (!ended || first === null || last === null) throw new Error(`the background batch did not end within ${BATCH_DEADLINE_MS / 1000} s`);
  const seconds = (last - first) / 1000;
  return { rate: amount / seconds, seconds, cpuMs, errors: amount - succeeded, writeMs };
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

/** The functions with the most self time in a V8 CPU profile, and the time not idle, ms. */
function topSelfTime(file: string, count: number, fromUs: number, toUs: number): { top: Array<{ name: string; where: string; ms: number }>; busyMs: number } {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number };
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<string, { name: string; where: string; us: number }>();
  let time = profile.startTime;
  let busyUs = 0;
  profile.samples.forEach((id, index) => {
    time += profile.timeDeltas[index];
    if (time < fromUs || time > toUs) return;
    const { functionName, url, lineNumber } = (byId.get(id) as ProfileNode).callFrame;
    if (functionName === '(idle)') return;
    const us = profile.timeDeltas[index + 1] ?? 0;
    busyUs += us;
    const where = url.startsWith('file://') ? `${path.relative(REPO_ROOT, new URL(url).pathname)}:${lineNumber + 1}` : url ? `${url}:${lineNumber + 1}` : '';
    const key = `${functionName}|${where}`;
    const entry = self.get(key) ?? { name: functionName || '(anonymous)', where, us: 0 };
    entry.us += us;
    self.set(key, entry);
  });
  const top = [...self.values()].sort((a, b) => b.us - a.us).slice(0, count);
  return { top: top.map(({ name, where, us }) => ({ name, where, ms: us / 1000 })), busyMs: busyUs / 1000 };
}

const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

const median = (values: number[]): number => percentile([...values].sort((a, b) => a - b), 50);

async function main(): Promise<void> {
  const project = writeProject();
  const stateFile = path.join(project, '.alyx', 'state.db');
  const loadAtStart = loadAverage();
  const started = Date.now();
  // The file exists before alyx starts, so alyx opens it, and its worker runs, from the start.
  const state = new StateFile(stateFile);
  let server: Server | null = null;
  try {
    server = await serveAlyx(project);
    // Unmeasured: reuse processes started and alyx's code optimised before the first round.
    await syncCell(server, N);
    await backgroundCell(server, state, N);
    const rounds: Array<{ sync: Cell; background: Cell & { writeMs: number } }> = [];
    for (let round = 0; round < ROUNDS; round++) {
      let sync: Cell;
      let background: Cell & { writeMs: number };
      if (round % 2 === 0) {
        sync = await syncCell(server, N);
        background = await backgroundCell(server, state, N);
      } else {
        background = await backgroundCell(server, state, N);
        sync = await syncCell(server, N);
      }
      rounds.push({ sync, background });
      console.log(`round ${round + 1}: sync ${fmt(sync.rate)}/s, background ${fmt(background.rate)}/s, ratio ${fmt(background.rate / sync.rate, 2)}`);
    }
    await stop(server);
    server = null;

    let profile: ReturnType<typeof topSelfTime> | null = null;
    let profiled: Cell | null = null;
    if (process.env.BENCH_PROFILE) {
      const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'alyx-bench-profile-'));
      try {
        const profiling = await serveAlyx(project, {}, ['--cpu-prof', `--cpu-prof-dir=${profileDir}`]);
        server = profiling;
        await syncCell(profiling, N);
        await backgroundCell(profiling, state, N);
        const from = monotonicUs();
        profiled = await backgroundCell(profiling, state, N);
        const to = monotonicUs();
        await stop(profiling);
        server = null;
        const file = fs.readdirSync(profileDir).find((each) => each.endsWith('.cpuprofile'));
        // The window holds the batch's writing too (BATCH_LEAD_MS, alyx mostly idle then).
        if (file) profile = topSelfTime(path.join(profileDir, file), PROFILE_TOP, from, to);
      } finally {
        fs.rmSync(profileDir, { recursive: true, force: true });
      }
    }

    const ratios = rounds.map(({ sync, background }) => background.rate / sync.rate);
    const ratio = median(ratios);
    console.log(
      `\n${os.availableParallelism()} cores (${os.cpus()[0]?.model.trim()}), node ${process.version}; load average (1/5/15 min) at start ${loadAtStart}, at end ${loadAverage()}; a trivial node function written with alyx/handler, ${REUSE ? 'reuse: true' : 'without reuse (a process per call, functions.pool 1)'}; functions.concurrency ${CONCURRENCY_LIMIT}; ${N} invocations per cell, ${ROUNDS} rounds after an unmeasured one, sync and background taking turns\n`,
    );
    console.log('| round | sync req/s | background inv/s | background/sync | alyx CPU per sync request, ms | per background invocation, ms | batch written in, ms |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    rounds.forEach(({ sync, background }, index) => {
      const errors = sync.errors + background.errors;
      console.log(`| ${index + 1} | ${fmt(sync.rate)} | ${fmt(background.rate)} | ${fmt(background.rate / sync.rate, 2)} | ${fmt(sync.cpuMs, 3)} | ${fmt(background.cpuMs, 3)} | ${fmt(background.writeMs, 0)} |${errors > 0 ? ` (${errors} failed)` : ''}`);
    });
    console.log(
      `| median | ${fmt(median(rounds.map((r) => r.sync.rate)))} | ${fmt(median(rounds.map((r) => r.background.rate)))} | ${fmt(ratio, 2)} | ${fmt(median(rounds.map((r) => r.sync.cpuMs)), 3)} | ${fmt(median(rounds.map((r) => r.background.cpuMs)), 3)} | |`,
    );
    console.log(`\ntarget: background ≥ ${TARGET} × sync at concurrency ${CONNECTIONS}: median ${fmt(ratio, 2)} (rounds ${fmt(Math.min(...ratios), 2)} to ${fmt(Math.max(...ratios), 2)}): ${ratio >= TARGET ? 'met' : 'NOT MET'}`);
    if (profile && profiled) {
      console.log(`\nalyx under --cpu-prof running one background batch: ${fmt(profiled.rate)} inv/s; its main thread busy ${fmt(profile.busyMs, 0)} ms, ${fmt(profile.busyMs / N, 3)} ms per invocation. The top ${PROFILE_TOP} functions by self time:\n`);
      console.log('| function | file:line | self ms | % of busy |');
      console.log('| --- | --- | ---: | ---: |');
      for (const { name, where, ms } of profile.top) console.log(`| ${name} | ${where} | ${fmt(ms, 0)} | ${fmt((100 * ms) / profile.busyMs, 1)} |`);
    }
    console.log(`\n(${fmt((Date.now() - started) / 1000, 0)} s in all)`);
  } finally {
    if (server) await stop(server);
    await state.close();
    fs.rmSync(project, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
