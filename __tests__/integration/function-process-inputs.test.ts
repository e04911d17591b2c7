import fs from 'node:fs';
import path from 'node:path';
import { cleanEnv } from '../helpers/cli';
import { nodeFunction } from '../helpers/fixtures';
import { makeProject, removeProject } from '../helpers/project';
import { request, startServer, stopAllServers, type RunningServer } from '../helpers/server';
import { warnSkip } from '../helpers/tools';

/** What a function's process is given besides its request: fds 0-2 only, and an environment that arrives whole or not at all. */

const FDS = nodeFunction(`
const fs = require('node:fs');
const fds = {};
for (const fd of fs.readdirSync('/proc/self/fd')) {
  try { fds[fd] = fs.readlinkSync('/proc/self/fd/' + fd); } catch {}
}
console.log(JSON.stringify({ success: true, output: { fds } }));
`);
const ENV = nodeFunction(`console.log(JSON.stringify({ success: true, output: { value: process.env.BAD_VALUE ?? null } }));`);

const onLinux = process.platform === 'linux';
if (!onLinux) warnSkip("the fds a function's process is given", 'Linux (/proc/self/fd)');

let root: string;
const opened: number[] = [];
beforeEach(() => {
  root = makeProject({
    'functions/fds/index.js': FDS,
    'functions/nul/index.js': ENV,
    // YAML's "\0" is a NUL byte: no process environment can carry it.
    'functions/nul/manifest.yaml': 'env:\n  BAD_VALUE: "before\\0after"\n',
  });
});
afterEach(async () => {
  await stopAllServers();
  for (const fd of opened.splice(0)) fs.closeSync(fd);
  removeProject(root);
});

const serve = (env: NodeJS.ProcessEnv, extraStdio: Array<number | 'ignore'> = []): Promise<RunningServer> =>
  startServer(['serve', '-C', root], { env: cleanEnv(env), extraStdio });
const call = (server: RunningServer, name: string) => request(`${server.url}/api/functions/${name}`, { method: 'POST', body: '{}' });

describe.each([
  ['posix_spawn where built', {}],
  ["node's spawn", { ALYX_POSIX_SPAWN: '0' }],
])('started with %s', (_way, env) => {
  (onLinux ? it : it.skip)('a function gets no fd that alyx inherited from its parent, cold or warm', async () => {
    const marker = path.join(root, 'inherited-by-alyx');
    const fd = fs.openSync(marker, 'w');
    opened.push(fd);
    // At 3 and at 40: node itself marks a few low fds close-on-exec at its start, not all.
    const server = await serve(env, [fd, ...Array<'ignore'>(36).fill('ignore'), fd]);
    // The first runs cold; the second in the warm process started after it.
    for (const attempt of [0, 1]) {
      const response = await call(server, 'fds');
      expect({ attempt, status: response.status }).toEqual({ attempt, status: 200 });
      const fds = response.body.output.fds as Record<string, string>;
      expect(Object.values(fds)).not.toContain(marker);
      expect(Object.keys(fds)).toEqual(expect.arrayContaining(['0', '1', '2']));
    }
  });

  it('an environment value holding a NUL byte is refused with EXECUTION_ERROR naming the variable, never cut short', async () => {
    const server = await serve(env);
    for (const attempt of [0, 1]) {
      const response = await call(server, 'nul');
      expect({ attempt, status: response.status, code: response.body.error?.code }).toEqual({ attempt, status: 502, code: 'EXECUTION_ERROR' });
      expect(response.body.error.message).toContain('BAD_VALUE');
      expect(response.body.error.message).toContain('NUL byte');
      expect(response.body.error.message).not.toMatch(/\n\s+at /);
    }
    expect(server.logs().some((line) => typeof line.stack === 'string' || String(line.err ?? '').includes(' at '))).toBe(false);
  });
});
