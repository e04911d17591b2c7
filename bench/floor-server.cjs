'use strict';
/**
 * The floor for bench/spawn-floor.ts: a minimal HTTP server that answers each request by
 * spawning the function's process directly, writing the same kind of request document to its
 * stdin and sending back its stdout. Whatever alyx costs beyond this is alyx's own share.
 *
 *   node bench/floor-server.cjs '{"name": {"command": [...], "cwd": "..."}}' PORT
 *
 * Listens on 127.0.0.1:PORT.
 */
const { spawn } = require('node:child_process');
const { randomBytes, randomUUID } = require('node:crypto');
const http = require('node:http');

const functions = JSON.parse(process.argv[2]);

const server = http.createServer((req, res) => {
  const fn = functions[req.url.slice(1)];
  if (!fn) {
    res.writeHead(404).end();
    return;
  }
  let body = '';
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    const child = spawn(fn.command[0], fn.command.slice(1), { cwd: fn.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const chunks = [];
    child.stdout.on('data', (chunk) => chunks.push(chunk));
    child.stderr.resume();
    child.stdin.on('error', () => undefined);
    child.on('close', (code) => {
      res.writeHead(code === 0 ? 200 : 502, { 'Content-Type': 'application/json' }).end(Buffer.concat(chunks));
    });
    child.stdin.end(
      JSON.stringify({
        request_id: randomUUID(),
        function: req.url.slice(1),
        input: body ? JSON.parse(body) : {},
        context: { auth: null, env: {}, alyx_url: '', internal_token: randomBytes(32).toString('hex') },
      }),
    );
  });
});
server.listen(Number(process.argv[3]), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
