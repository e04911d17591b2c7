'use strict';
/**
 * Runs every function of alyx's addon through its success and failure paths, many times, for a
 * memory checker (valgrind memcheck) to watch: __tests__/integration/addon-memcheck.test.ts.
 *
 *   node addon-exercise.cjs ROUNDS
 */
const fs = require('node:fs');
const path = require('node:path');
const addon = require('node-gyp-build')(path.resolve(__dirname, '..', '..'));

const rounds = Number(process.argv[2] ?? 20);
const environment = Array.from({ length: 50 }, (_, i) => `VARIABLE_${i}=${'v'.repeat(i * 7)}`);
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function reapWithin(pid, ms) {
  for (let waited = 0; waited < ms; waited += 5) {
    const status = addon.reap(pid);
    if (status) return status;
    sleep(5);
  }
  throw new Error(`process ${pid} was not reaped within ${ms} ms`);
}

let started = 0;
let refused = 0;
for (let round = 0; round < rounds; round++) {
  const [pid, stdin, stdout, stderr] = addon.spawn('/bin/sh', ['/bin/sh', '-c', 'cat; echo done >&2', 'sh', 'x'.repeat(round * 100)], environment, '/tmp');
  fs.writeSync(stdin, 'request');
  fs.closeSync(stdin);
  const status = reapWithin(pid, 10_000);
  if (status[0] !== 0) throw new Error(`sh exited with ${status}`);
  fs.closeSync(stdout);
  fs.closeSync(stderr);
  started++;
  for (const [file, cwd] of [['/no/such/program', '/tmp'], ['/etc/hostname', '/tmp'], ['/bin/true', '/no/such/folder']]) {
    try {
      // Under valgrind the start is a fork rather than a vfork, and an exec that fails shows as exit 127.
      const [failedPid, ...fds] = addon.spawn(file, [file], environment, cwd);
      for (const fd of fds.slice(0, 3)) fs.closeSync(fd);
      if (reapWithin(failedPid, 10_000)[0] !== 127) throw new Error(`${file} in ${cwd} started`);
      refused++;
    } catch (error) {
      if (!/^E[A-Z]+$/.test(error.code)) throw error;
      refused++;
    }
  }
}
addon.subreaper();
console.log(JSON.stringify({ started, refused }));
