'use strict';
/**
 * The node preload of a process started ahead of its request (a warm pool's), in place of
 * node-preload.cjs: that, and while the process waits, the path its request will take in.
 */
const net = require('node:net');

require('./node-preload.cjs');

/**
 * The request will arrive on stdin, a socket over a pipe handle: its first chunk and its end run
 * code that node compiles on first use (0.5 to 1 ms here). One chunk and an end sent to itself
 * over an abstract unix socket (no file, gone with the process) run the same code now.
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

if (process.platform === 'linux') warmReadPath();
