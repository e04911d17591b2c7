'use strict';
/**
 * The limit for reuse mode's design, for bench/reuse.ts: a minimal HTTP server that keeps ONE
 * process of each function, started as alyx starts a reuse process (ALYX_REUSE=1), writes each
 * request to it as one line on its stdin and answers with its next line on stdout. Requests that
 * arrive while it is busy wait in its stdin, in order (pipelined). No timeouts, no memory caps,
 * no logs: what alyx costs beyond this is alyx's own share.
 *
 * With --one-at-a-time, a request is written only once the process has answered the one before,
 * as alyx's contract has it (SPEC §10: one invocation at a time per process): the process then
 * waits for each next request instead of finding it already in its stdin.
 *
 *   node bench/pipe-server.cjs '{"name": {"command": [...], "cwd": "...", "env": {...}}}' PORT [--one-at-a-time]
 *
 * Listens on 127.0.0.1:PORT once every process has written the helper's handshake.
 */
const { spawn } = require('node:child_process');
const { randomFillSync, randomUUID } = require('node:crypto');
const http = require('node:http');

const HANDSHAKE = '{"alyx_reuse":1}';
const HANDSHAKE_DEADLINE_MS = 20_000;
const functions = JSON.parse(process.argv[2]);
const port = Number(process.argv[3]);
const oneAtATime = process.argv[4] === '--one-at-a-time';
const alyxUrl = `http://127.0.0.1:${port}`;

/** 64 hex characters, from a pooled buffer as alyx draws them: one randomFillSync per 128 tokens, not one per request. */
let tokens = Buffer.alloc(0);
let tokenOffset = 0;
function internalToken() {
  if (tokenOffset + 32 > tokens.length) {
    tokens = randomFillSync(Buffer.allocUnsafe(4096));
    tokenOffset = 0;
  }
  tokenOffset += 32;
  return tokens.toString('hex', tokenOffset - 32, tokenOffset);
}

/** One long-lived process of a function: `call` writes a request line; its answer is the next stdout line. */
function startProcess(fn) {
  const child = spawn(fn.command[0], fn.command.slice(1), { cwd: fn.cwd, env: { ...process.env, ...fn.env, ALYX_REUSE: '1' }, stdio: ['pipe', 'pipe', 'inherit'] });
  /** Who waits for the next response line, oldest first. */
  const waiting = [];
  /** One at a time: the request lines not yet written, those of waiting[1] onwards. */
  const unwritten = [];
  let handshaken = false;
  let exited = false;
  let pending = '';
  let onHandshake;
  const ready = new Promise((resolve, reject) => {
    onHandshake = resolve;
    child.once('exit', (code, signal) => reject(new Error(`${fn.command.join(' ')} exited (${signal ?? code}) before its handshake`)));
    setTimeout(() => reject(new Error(`${fn.command.join(' ')} wrote no handshake within ${HANDSHAKE_DEADLINE_MS} ms`)), HANDSHAKE_DEADLINE_MS).unref();
  });
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    pending += chunk;
    for (let newline = pending.indexOf('\n'); newline !== -1; newline = pending.indexOf('\n')) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      if (handshaken) {
        // The next request goes out before this answer is sent, so the process works while node answers.
        if (unwritten.length > 0) child.stdin.write(`${unwritten.shift()}\n`);
        waiting.shift()?.(line);
      } else if (line.trim() === HANDSHAKE) {
        handshaken = true;
        onHandshake();
      }
    }
  });
  child.stdin.on('error', () => undefined);
  child.on('exit', () => {
    exited = true;
    unwritten.length = 0;
    for (const answer of waiting.splice(0)) answer(null);
  });
  return {
    child,
    ready,
    call(line, answer) {
      if (exited) return answer(null);
      waiting.push(answer);
      if (oneAtATime && waiting.length > 1) unwritten.push(line);
      else child.stdin.write(`${line}\n`);
    },
  };
}

const processes = new Map(Object.entries(functions).map(([name, fn]) => [name, startProcess(fn)]));

function respond(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/api/health') return respond(res, 200, { status: 'ok' });
  const name = req.url.slice(1);
  const fn = processes.get(name);
  if (req.method !== 'POST' || !fn) return respond(res, 404, { success: false, error: { code: 'NOT_FOUND' } });
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    let input;
    try {
      input = chunks.length === 0 ? {} : JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return respond(res, 400, { success: false, error: { code: 'INVALID_JSON' } });
    }
    const started = performance.now();
    const requestId = randomUUID();
    const request = { request_id: requestId, function: name, input, context: { auth: null, env: {}, alyx_url: alyxUrl, internal_token: internalToken() } };
    fn.call(JSON.stringify(request), (line) => {
      let response = null;
      try {
        response = line === null ? null : JSON.parse(line);
      } catch {
        // Not a response: answered as the process's failure below.
      }
      if (response === null || typeof response !== 'object') return respond(res, 502, { request_id: requestId, success: false, error: { code: 'EXECUTION_ERROR' } });
      const envelope = { request_id: requestId, success: response.success === true };
      if (envelope.success) envelope.output = response.output ?? null;
      else envelope.error = response.error;
      envelope.logs = response.logs ?? [];
      envelope.duration_ms = Math.round(performance.now() - started);
      respond(res, envelope.success ? 200 : 500, envelope);
    });
  });
});

function shutdown() {
  server.close();
  for (const { child } of processes.values()) child.stdin.end();
  // The helpers end at the end of their input; one that does not is ended.
  setTimeout(() => {
    for (const { child } of processes.values()) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    process.exit(0);
  }, 2000).unref();
  Promise.all([...processes.values()].map(({ child }) => (child.exitCode !== null || child.signalCode !== null ? null : new Promise((resolve) => child.once('exit', resolve))))).then(() => process.exit(0));
}

Promise.all([...processes.values()].map(({ ready }) => ready)).then(
  () => server.listen(port, '127.0.0.1'),
  (error) => {
    console.error(error.message);
    for (const { child } of processes.values()) child.kill('SIGKILL');
    process.exitCode = 1;
  },
);
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
