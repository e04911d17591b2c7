import fs from 'node:fs';
import path from 'node:path';
import { cleanEnv } from '../helpers/cli';
import { waitFor } from '../helpers/processes';
import { makeProject, removeProject } from '../helpers/project';
import { openSocket, startServer, stopAllServers } from '../helpers/server';

/**
 * /api/ready says why it is 503 (SPEC §6, §14). A function that is not ready and a lost state
 * store have their own tests (server.test.ts, replicas.test.ts); this one is the drain.
 */
describe('readiness while draining', () => {
  let project: string;
  beforeEach(() => {
    project = makeProject({
      'functions/slow/index.js':
        "const fs = require('node:fs'); let t = ''; process.stdin.on('data', (c) => (t += c)).on('end', () => { fs.appendFileSync('../../started.log', 'x\\n'); " +
        "setTimeout(() => process.stdout.write(JSON.stringify({ success: true, output: 1 })), JSON.parse(t).input.ms); });",
    });
  });
  afterEach(async () => {
    await stopAllServers();
    removeProject(project);
  });

  it('a readiness check on a connection still open after SIGTERM answers 503 with the reason shutting_down', async () => {
    const server = await startServer(['serve', '-C', project], { env: cleanEnv() });
    // The listener closes at SIGTERM: only connections already open are answered, as long as invocations run.
    const [short, long] = [await openSocket(server), await openSocket(server)];
    short.socket.write('POST /api/functions/slow HTTP/1.1\r\nHost: alyx\r\nContent-Length: 11\r\n\r\n{"ms":1500}');
    long.socket.write('POST /api/functions/slow HTTP/1.1\r\nHost: alyx\r\nContent-Length: 11\r\n\r\n{"ms":5000}');
    // Both invocations run before the signal: their processes have started.
    const started = (): number => (fs.existsSync(path.join(project, 'started.log')) ? fs.readFileSync(path.join(project, 'started.log'), 'utf8').split('\n').filter(Boolean).length : 0);
    expect(await waitFor(() => started() === 2, 10_000)).toBe(true);
    server.child.kill('SIGTERM');
    expect(await waitFor(() => server.logs().some((line) => String(line.msg).includes('shutting down')), 5000)).toBe(true);
    short.socket.write('GET /api/ready HTTP/1.1\r\nHost: alyx\r\n\r\n');
    expect(await waitFor(() => (short.received().match(/HTTP\/1\.1 /g) ?? []).length >= 2, 8000)).toBe(true);
    const ready = short.received().slice(short.received().lastIndexOf('HTTP/1.1 '));
    expect(ready).toMatch(/^HTTP\/1\.1 503 /);
    expect(JSON.parse(ready.slice(ready.indexOf('\r\n\r\n') + 4))).toEqual({
      status: 'not_ready',
      functions: 1,
      ready: 1,
      reasons: [{ reason: 'shutting_down', message: 'the server is shutting down' }],
    });
    short.socket.destroy();
    long.socket.destroy();
  });
});
