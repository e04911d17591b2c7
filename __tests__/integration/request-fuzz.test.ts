import fc from 'fast-check';
import net from 'node:net';
import { cleanEnv } from '../helpers/cli';
import { nodeFunction } from '../helpers/fixtures';
import { makeProject, removeProject } from '../helpers/project';
import { request, startServer, stopAllServers, type RunningServer } from '../helpers/server';

/**
 * Random requests to a real server over raw sockets, and random stdout from a real function:
 * every request gets an answer that is not a 500, and the server stays up.
 */

/** Writes back, as its whole stdout, the text it was given: the protocol parser sees it as it is. */
const RAW = nodeFunction("process.stdout.write(typeof request.input.stdout === 'string' ? request.input.stdout : JSON.stringify({ success: true, output: request.input }));");

let root: string;
let server: RunningServer;
beforeAll(async () => {
  root = makeProject({ 'functions/raw/index.js': RAW, 'alyx.yaml': 'server:\n  max_body_size: 64kb\n' });
  server = await startServer(['serve', '-C', root], { env: cleanEnv() });
});
afterAll(async () => {
  await stopAllServers();
  removeProject(root);
});

/** Sends bytes as they are; resolves with the status line's code (0 when the connection closed without one). */
function exchange(head: string, body: Buffer): Promise<{ status: number; text: string }> {
  const url = new URL(server.url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(url.port), url.hostname);
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text }));
    socket.setTimeout(10_000, () => socket.destroy());
    // Not half-closed: node's server takes a client's FIN as the client going away.
    socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  });
}

const token = fc.stringOf(fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&\'*+-.^_`|~'), { minLength: 1, maxLength: 10 });
const method = fc.oneof(fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'), token);
const pathChar = fc.constantFrom(...'abcXYZ019-._~%/?=&[]{}:@!$\'()*+,;'.split(''), '%00', '%2F', '%ZZ', '%C3%A9', '..');
const pathname = fc.oneof(
  fc.tuple(fc.constantFrom('/api/functions/raw', '/api/functions/', '/api/functions', '/api/health', '/api/ready', '/api/admin/reload', '/'), fc.stringOf(pathChar, { maxLength: 20 })).map(([start, rest]) => start + rest),
  fc.webPath(),
);
const stdoutText = fc.oneof(
  fc.json(),
  fc.fullUnicodeString({ maxLength: 200 }),
  fc.array(fc.oneof(fc.json(), fc.string()), { maxLength: 5 }).map((lines) => lines.join('\n')),
  fc.nat({ max: 3000 }).map((depth) => `{"success": true, "output": ${'['.repeat(depth)}${']'.repeat(depth)}}`),
  fc.constantFrom('{"success": false, "error": {"status": 200}}', '{"error": "x", "error_code": 7}', '{"success": true, "logs": {}}'),
);
const body = fc.oneof(
  stdoutText.map((text) => Buffer.from(JSON.stringify({ stdout: text }))),
  fc.json().map((text) => Buffer.from(text)),
  fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
  fc.constant(Buffer.alloc(70 * 1024, 0x20)),
);
const headers = fc.record({
  contentType: fc.constantFrom('application/json', 'text/plain', '', 'application/json; charset=latin1'),
  requestId: fc.oneof(fc.constant(''), token, fc.string({ maxLength: 200 }).map((text) => text.replace(/[\r\n]/g, ''))),
  chunked: fc.boolean(),
});

const seen = new Map<number, number>();
afterAll(() => process.stderr.write(`statuses: ${JSON.stringify([...seen])}\n`));

describe('random requests to a real server', () => {
  /** Most cases invoke the function with random stdout for it to write; the rest are random requests. */
  const invocation = fc.record({
    verb: fc.constantFrom('POST', 'PUT', 'PATCH', 'DELETE'),
    target: fc.constantFrom('/api/functions/raw', '/api/functions/raw/', '/api/functions/raw?x=1'),
    payload: stdoutText.map((text) => Buffer.from(JSON.stringify({ stdout: text }))),
    extra: headers,
  });
  const anything = fc.record({ verb: method, target: pathname, payload: body, extra: headers });

  it('never answer 500, never go unanswered, and leave the server up', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 3, arbitrary: invocation }, { weight: 2, arbitrary: anything }), async ({ verb, target, payload, extra }) => {
        const lines = [`${verb} ${target.replace(/[\s]/g, '')} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
        if (extra.contentType) lines.push(`Content-Type: ${extra.contentType}`);
        if (extra.requestId) lines.push(`X-Request-Id: ${extra.requestId}`);
        const framed = extra.chunked ? Buffer.concat([Buffer.from(`${payload.length.toString(16)}\r\n`), payload, Buffer.from('\r\n0\r\n\r\n')]) : payload;
        lines.push(extra.chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${payload.length}`);
        const { status, text } = await exchange(`${lines.join('\r\n')}\r\n\r\n`, framed);
        seen.set(status, (seen.get(status) ?? 0) + 1);
        expect([verb, target, status]).not.toEqual([verb, target, 0]);
        if (status >= 400 && verb !== 'HEAD' && text.includes('\r\n\r\n{')) {
          const answer = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { error?: { code?: unknown } };
          expect(typeof answer.error?.code).toBe('string');
          // A 500 is the function's own report of a failure (SPEC §6); alyx itself never fails with one.
          expect([verb, target, status, answer.error?.code]).not.toEqual([verb, target, 500, 'INTERNAL_ERROR']);
        } else {
          expect([verb, target, status]).not.toEqual([verb, target, 500]);
        }
      }),
      { numRuns: 500 },
    );
    expect((await request(`${server.url}/api/health`)).status).toBe(200);
    expect(server.child.exitCode).toBeNull();
    expect(server.logs().filter((line) => String(line.msg).includes('unexpected error'))).toEqual([]);
  }, 120_000);
});
