'use strict';
/**
 * Loaded with --require into a node function's main process. Once the last 'exit' listener has
 * run, no JavaScript can write to stdout any more, so stdout is closed right there: alyx sees
 * end-of-file and can answer without waiting for node's own teardown and the kernel's, which
 * take about 10 ms more. fd 1 is then pointed at /dev/null, so that nothing writes to a
 * descriptor the process might reuse.
 */
const { Console } = require('node:console');
const fs = require('node:fs');
const { Writable } = require('node:stream');

const emit = process.emit;
if (process.platform !== 'win32') {
  process.emit = function emitThenCloseStdout(event, ...args) {
    const result = emit.call(this, event, ...args);
    if (event === 'exit') {
      try {
        fs.closeSync(1);
        fs.openSync('/dev/null', 'w');
      } catch {
        // Already closed, or no /dev/null: stdout then ends with the process, as without this.
      }
    }
    return result;
  };
}

// A warm process waits for its request. The first write to stdout and the first console.log
// compile their code paths (about 1.5 ms here); doing it now takes that off the answer's path.
// An empty write sends nothing.
process.stdout.write('');
new Console(new Writable({ write: (_chunk, _encoding, done) => done() })).log(JSON.stringify({ warm: true }));
