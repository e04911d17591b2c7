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

// start(): the same process from a thread of libuv's pool, its request in stdin before it runs;
// one request larger than the socket takes, whose rest is written from here.
// Flat already: V8 flattening a rope inside the addon's string read would allocate a heap page
// of V8's there, which memcheck counts as lost at exit.
const largeInput = Buffer.alloc(4 << 20, 'r').toString('latin1');

async function exerciseStart() {
  for (let round = 0; round < rounds; round++) {
    const input = round % 4 === 3 ? largeInput : `request ${round}`;
    const [promise, stdinPlace, stdout, stderr] = addon.start('/bin/sh', ['/bin/sh', '-c', 'cat >/dev/null; echo done >&2'], environment, '/tmp', input);
    if (stdinPlace !== -1) throw new Error('start() gave stdin before the process started');
    const [pid, stdin, written] = await promise;
    if (stdin >= 0) {
      let offset = written;
      const rest = Buffer.from(input);
      while (offset < rest.length) {
        try {
          offset += fs.writeSync(stdin, rest, offset);
        } catch (error) {
          if (error.code !== 'EAGAIN') throw error;
          sleep(1);
        }
      }
      fs.closeSync(stdin);
    } else if (written !== Buffer.byteLength(input)) throw new Error(`start() wrote ${written} of ${input.length} bytes`);
    const status = reapWithin(pid, 10_000);
    if (status[0] !== 0) throw new Error(`sh exited with ${status}`);
    fs.closeSync(stdout);
    fs.closeSync(stderr);
    started++;
    for (const [file, cwd] of [['/no/such/program', '/tmp'], ['/bin/true', '/no/such/folder']]) {
      const [failing, , out, err] = addon.start(file, [file], environment, cwd, 'x');
      try {
        const [failedPid, failedStdin] = await failing;
        if (failedStdin >= 0) fs.closeSync(failedStdin);
        if (reapWithin(failedPid, 10_000)[0] !== 127) throw new Error(`${file} in ${cwd} started`);
      } catch (error) {
        if (!/^E[A-Z]+$/.test(error.code)) throw error;
      }
      fs.closeSync(out);
      fs.closeSync(err);
      refused++;
    }
  }
}

exerciseStart().then(
  () => {
    addon.subreaper();
    console.log(JSON.stringify({ started, refused }));
  },
  (error) => {
    console.error(error);
    process.exitCode = 1;
  },
);
