'use strict';
/**
 * What starting one process costs a Node process, by way of starting it, for bench/spawn-floor.ts:
 * the time spawn() holds the JavaScript thread, the CPU time of the whole Node process, and
 * the wall time of a run, per process; one process at a time, each with three pipes, in its
 * own process group (as alyx runs functions).
 *
 *   node bench/spawn-cost.cjs /path/to/executable [count]
 *
 * Prints one JSON line per way of spawning.
 */
const childProcess = require('node:child_process');
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const crossSpawn = require('cross-spawn');

const OPTIONS = { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: process.env };

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
  let insideSpawnMs;
  if (way === 'worker thread') {
    // The JavaScript thread only waits: the worker's thread forks.
    const worker = new Worker(__filename, { workerData: { file, count } });
    await new Promise((resolve) => worker.once('message', resolve));
    insideSpawnMs = 0;
    await worker.terminate();
  } else {
    insideSpawnMs = await runSequence(way === 'cross-spawn' ? crossSpawn : childProcess.spawn, file, count);
  }
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const perProcess = (ms) => Number((ms / count).toFixed(3));
  return { way, processes: count, spawn_call_ms: perProcess(insideSpawnMs), cpu_ms: perProcess((cpu.user + cpu.system) / 1000), wall_ms: perProcess(wallMs) };
}

if (isMainThread) {
  const file = process.argv[2];
  const count = Number(process.argv[3] ?? 200);
  (async () => {
    for (const way of ['cross-spawn', 'child_process.spawn', 'worker thread']) {
      process.stdout.write(`${JSON.stringify(await measure(way, file, count))}\n`);
    }
  })();
} else {
  runSequence(childProcess.spawn, workerData.file, workerData.count).then(() => parentPort.postMessage('done'));
}
