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
const net = require('node:net');
const { Writable } = require('node:stream');

/** Set by alyx on a process started ahead of its request (src/invoke/preload.ts): read, then removed. */
const WARM_PROCESS_VARIABLE = 'ALYX_WARM_PROCESS';

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

const startedAhead = process.env[WARM_PROCESS_VARIABLE] === '1';
delete process.env[WARM_PROCESS_VARIABLE];
if (startedAhead && process.platform === 'linux') warmReadPath();

/**
 * The request will arrive on stdin, a socket over a pipe handle: its first chunk and its end run
 * code that node compiles on first use (0.5 to 1 ms here). One chunk and an end sent to itself
 * over an abstract unix socket (no file, gone with the process) run the same code now. Only in a
 * process started ahead of its request: in any other, the request is already waiting.
 */
function warmReadPath() {
  const name = `\0alyx-warm-${process.pid}`;
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.end(JSON.stringify({ warm: true }));
    server.close();
  });
  server.on('error', () => undefined);
  server.unref();
  server.listen(name, () => {
    let received = '';
    const client = net.connect(name);
    client.unref();
    client.on('error', () => undefined);
    client.on('data', (chunk) => (received += chunk));
    client.on('end', () => {
      JSON.parse(received);
      client.destroy();
    });
  });
}
