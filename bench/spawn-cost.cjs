'use strict';
/**
 * What starting one process costs a Node process, for bench/spawn-floor.ts: the time spawn()
 * holds the JavaScript thread, the CPU time of the whole Node process, and the wall time of a
 * run, per process; one process at a time, each with three pipes, in its own process group
 * (as alyx runs functions).
 *
 *   node bench/spawn-cost.cjs /path/to/executable [count]
 *
 * Where the build made alyx's posix_spawn addon, alyx's own way of starting with it
 * (dist/process/native-process.js) is measured too.
 * Prints one JSON line per way of spawning.
 */
const childProcess = require('node:child_process');
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const crossSpawn = require('cross-spawn');
const { processStartWay, startNativeProcess } = require('../dist/process/native-process.js');

const OPTIONS = { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: process.env };
const POSIX_SPAWN = 'posix_spawn (native addon)';
const WAYS = ['cross-spawn', 'child_process.spawn', 'worker thread', ...(processStartWay() === 'posix_spawn' ? [POSIX_SPAWN] : [])];
const SPAWNERS = {
  'cross-spawn': crossSpawn,
  'child_process.spawn': childProcess.spawn,
  [POSIX_SPAWN]: (file, args, options) => startNativeProcess(file, args, process.cwd(), options.env),
};
const ROUNDS = 4;
const FIELDS = ['spawn_call_ms', 'cpu_ms', 'wall_ms'];

/** Runs `count` processes one after another; resolves with the time spawn() itself took, in ms. */
function runSequence(spawnOne, file, count) {
  return new Promise((resolve) => {
    let insideSpawnNs = 0n;
    let done = 0;
    const next = () => {
      const before = process.hrtime.bigint();
      const child = spawnOne(file, [], OPTIONS);
      insideSpawnNs += process.hrtime.bigint() - before;
      child.stdin.on('error', () => undefined);
      child.stdout.resume();
      child.stderr.resume();
      child.on('close', () => (++done < count ? next() : resolve(Number(insideSpawnNs) / 1e6)));
      child.stdin.end('{"input": {}}');
    };
    next();
  });
}

async function measure(way, file, count) {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let insideSpawnMs = 0;
  if (way === 'worker thread') {
    // The JavaScript thread only waits: the worker's thread forks.
    const worker = new Worker(__filename, { workerData: { file, count } });
    await new Promise((resolve) => worker.once('message', resolve));
    await worker.terminate();
  } else {
    insideSpawnMs = await runSequence(SPAWNERS[way], file, count);
  }
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  return { spawn_call_ms: insideSpawnMs / count, cpu_ms: (cpu.user + cpu.system) / 1000 / count, wall_ms: wallMs / count };
}

async function main() {
  const file = process.argv[2];
  const perRound = Math.ceil(Number(process.argv[3] ?? 200) / ROUNDS);
  await measure('child_process.spawn', file, 20); // warm-up: code compiled, pages touched
  // Rounds in turn, so a change in the machine's load reaches every way alike.
  const totals = new Map(WAYS.map((way) => [way, { spawn_call_ms: 0, cpu_ms: 0, wall_ms: 0 }]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const way of WAYS) {
      const result = await measure(way, file, perRound);
      for (const field of FIELDS) totals.get(way)[field] += result[field] / ROUNDS;
    }
  }
  for (const [way, total] of totals) {
    const rounded = Object.fromEntries(FIELDS.map((field) => [field, Number(total[field].toFixed(3))]));
    process.stdout.write(`${JSON.stringify({ way, processes: ROUNDS * perRound, ...rounded })}\n`);
  }
}

if (isMainThread) void main();
else runSequence(childProcess.spawn, workerData.file, workerData.count).then(() => parentPort.postMessage('done'));
