import fs from 'node:fs';
import path from 'node:path';
import { processStartWay } from '../../src/process/native-process';
import { cleanEnv } from '../helpers/cli';
import { isAlive, readPidFile, waitFor } from '../helpers/processes';
import { executable, makeProject, removeProject, type FixtureTree } from '../helpers/project';
import { request, startServer, stopAllServers, type RunningServer } from '../helpers/server';
import { hasCommand, warnSkip } from '../helpers/tools';

/**
 * Processes that leave a function's process group and drop its environment (so neither the
 * group nor the tag finds them): alyx, a subreaper, finds them by their parent pids and ends
 * them with the invocation, with a warm process's drain, and with alyx itself.
 */

/**
 * A prebuilt executable shell function, with its manifest. `settled <pid>` waits until that
 * process leads its own session and has an empty environment, so the main process does not
 * exit while it is still in the group (where the group's end would catch it anyway).
 */
const script = (name: string, body: string, manifest = ''): FixtureTree => ({
  [`functions/${name}/manifest.yaml`]: `runtime: binary\nbuild:\n  output: run.sh\n${manifest}`,
  [`functions/${name}/run.sh`]: executable(`#!/bin/sh
cd ../..
cat > /dev/null
settled() {
  n=0
  while [ $n -lt 20000 ]; do
    n=$((n + 1))
    sid=$(sed 's/.*) //' /proc/$1/stat 2>/dev/null | cut -d' ' -f4)
    [ "$sid" = "$1" ] && [ -z "$(tr -d '\\0' < /proc/$1/environ 2>/dev/null)" ] && return 0
  done
}
${body}
`),
});
const RESPOND = `echo '{"success": true, "output": {}}'`;
const QUIET = '</dev/null >/dev/null 2>&1';
const HOG = `require('fs').writeFileSync('hog.pid', String(process.pid)); const hold = Buffer.alloc(200 * 1024 * 1024, 1); setInterval(() => hold[0]++, 1000);`;

/** At its start, before it reads its request, leaves a `sleep` in a new session with an empty environment. */
const NODE_HELPER = `
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const helper = spawn('/bin/sleep', ['300'], { detached: true, stdio: 'ignore', env: {} });
helper.unref();
fs.appendFileSync('../../helpers.log', helper.pid + '\\n');
let data = '';
process.stdin.on('data', (chunk) => (data += chunk));
process.stdin.on('end', () => console.log(JSON.stringify({ success: true, output: { pid: process.pid } })));
`;
/** The same in python: one helper that keeps the environment, one that replaces it. */
const PYTHON_HELPER = `
import json, subprocess, sys
kept = subprocess.Popen(['sleep', '300'], start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
replaced = subprocess.Popen(['/bin/sleep', '301'], env={'HELPER': '1'}, start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
with open('../../helpers.log', 'a') as log:
    log.write(f'{kept.pid}\\n{replaced.pid}\\n')
json.load(sys.stdin)
print(json.dumps({'success': True, 'output': {}}))
`;

const functions: FixtureTree = {
  ...script('holds-stdout', `setsid env -i /bin/sleep 300 &\necho $! > held.pid\nsettled $!\n${RESPOND}`),
  // In the group when the main process exits, out of it (and out of SIGTERM's reach) a moment later, holding stdout.
  ...script(
    'leaves-late',
    `trap '' TERM\n( exec sh -c 'echo $$ > late.pid; sleep 0.2; exec setsid env -i /bin/sleep 300' ) &\n` +
      `n=0\nwhile [ ! -s late.pid ] && [ $n -lt 100000 ]; do n=$((n + 1)); done\n${RESPOND}`,
  ),
  ...script('orphan', `( setsid env -i /bin/sleep 300 ${QUIET} & echo $! > orphan.pid; settled $! )\n${RESPOND}`, 'pool: 0\n'),
  ...script('escaped-hog', `setsid env -i ${process.execPath} -e "${HOG}" ${QUIET} &\nwait`, 'memory: 64mb\ntimeout: 20s\n'),
  ...script(
    'hangs',
    `setsid env -i /bin/sleep 300 ${QUIET} &\necho $! > tree.pid\n( setsid env -i /bin/sleep 301 ${QUIET} & echo $! > adopted.pid; settled $! )\necho $$ > main.pid\nsleep 60`,
    'timeout: 60s\n',
  ),
  ...script(
    'long',
    `echo $$ > long.pid\nsetsid env -i /bin/sleep 300 ${QUIET} &\necho $! > long-child.pid\nsettled $!\n` +
      `n=0\nwhile [ ! -e release ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n + 1)); done\n${RESPOND}`,
    'pool: 0\ntimeout: 60s\n',
  ),
  ...script(
    'times-out',
    `setsid env -i /bin/sleep 300 ${QUIET} &\necho $! > timed-out-child.pid\nsettled $!\nsleep 30`,
    'pool: 0\ntimeout: 300ms\n',
  ),
  // The main process answers and exits; a subshell it left in the group still runs, with a child in a session of its own.
  ...script(
    'via-member',
    `( echo $(sh -c 'echo $PPID') > member.pid; setsid env -i /bin/sleep 300 ${QUIET} & echo $! > member-child.pid; settled $!; wait ) ${QUIET} &\n` +
      `n=0\nwhile [ ! -s member-child.pid ] && [ $n -lt 100000 ]; do n=$((n + 1)); done\nsettled $(cat member-child.pid)\n${RESPOND}`,
    'pool: 0\n',
  ),
  ...script('leaver', `( setsid env -i /bin/sleep 300 ${QUIET} & echo $! > leaver-child.pid; settled $! )\n${RESPOND}`, 'pool: 0\n'),
  'functions/node-helper/index.js': NODE_HELPER,
  'functions/plain/index.js': `require('node:fs').appendFileSync('../../plain.log', process.pid + '\\n');
let data = '';
process.stdin.on('data', (chunk) => (data += chunk));
process.stdin.on('end', () => console.log(JSON.stringify({ success: true, output: { pid: process.pid } })));
`,
  'functions/python-helper/index.py': PYTHON_HELPER,
};

const onLinux = process.platform === 'linux';
if (!onLinux) warnSkip('finding what a function leaves behind by parent pid', 'Linux');
const hasAddon = processStartWay() === 'posix_spawn';
if (onLinux && !hasAddon) warnSkip('alyx as a subreaper (the posix_spawn addon)', 'the built addon (cc and node headers)');
const hasPython = hasCommand('python3');
if (!hasPython) warnSkip('a python warm process that starts helpers', 'python3');

let root: string;
const pids: number[] = [];
/** A pid a function wrote to a file in the project, remembered so that afterEach can end it whatever happens. */
const pidFrom = async (file: string): Promise<number> => {
  const pid = await readPidFile(path.join(root, file), 10_000);
  pids.push(pid);
  return pid;
};
const helperPids = (): number[] => {
  try {
    const found = fs.readFileSync(path.join(root, 'helpers.log'), 'utf8').split('\n').filter(Boolean).map(Number);
    for (const pid of found) if (!pids.includes(pid)) pids.push(pid);
    return found;
  } catch {
    return [];
  }
};

beforeEach(() => {
  root = makeProject(functions);
});
afterEach(async () => {
  await stopAllServers();
  helperPids();
  for (const pid of pids.splice(0)) {
    try {
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  removeProject(root);
});

/** describe where the case applies; nothing at all where it does not. */
const describeIf =
  (condition: boolean) =>
  (name: string, block: () => void): void => {
    if (condition) describe(name, block);
  };

const serve = (env: NodeJS.ProcessEnv = {}, args: string[] = []): Promise<RunningServer> => startServer(['serve', '-C', root, ...args], { env: cleanEnv(env) });
const call = (server: RunningServer, name: string) => request(`${server.url}/api/functions/${name}`, { method: 'POST', body: '{}' });

describe.each([
  ['posix_spawn', {}, true],
  ["node's spawn", { ALYX_POSIX_SPAWN: '0' }, true],
  // What alyx does where the addon is not built.
  ["node's spawn, without the subreaper", { ALYX_POSIX_SPAWN: '0', ALYX_SUBREAPER: '0' }, false],
])('processes that leave the group and drop the environment, started with %s', (_way, env, subreaper) => {
  const adopts = subreaper && hasAddon;
  // Where alyx adopts no orphans these cases do not exist (not skipped: the row shows what is weaker).
  const linuxWithAddon = describeIf(onLinux && adopts);

  (onLinux ? it : it.skip)('ends what a process still in the group started in a session of its own, once the main process has exited', async () => {
    const server = await serve(env);
    expect(server.logs().find((line) => String(line.msg).includes('listening'))).toMatchObject({ subreaper: adopts });
    expect((await call(server, 'via-member')).status).toBe(200);
    const [member, escaped] = [await pidFrom('member.pid'), await pidFrom('member-child.pid')];
    expect(await waitFor(() => !isAlive(member) && !isAlive(escaped), 5000)).toBe(true);
  });

  linuxWithAddon('at the end of an invocation', () => {
    it('answers without waiting for an escaped process that holds stdout, and ends it', async () => {
      const server = await serve(env);
      const started = Date.now();
      const response = await call(server, 'holds-stdout');
      const elapsed = Date.now() - started;
      expect(response.status).toBe(200);
      expect(response.body.success).toBe(true);
      // stdout stays open for 2 s after the main process exits when alyx does not end its holder.
      expect(elapsed).toBeLessThan(1000);
      const held = await pidFrom('held.pid');
      expect(await waitFor(() => !isAlive(held), 5000)).toBe(true);
    });

    it('answers without waiting for a process that left the group while the group was being ended', async () => {
      const server = await serve(env);
      const started = Date.now();
      const response = await call(server, 'leaves-late');
      const elapsed = Date.now() - started;
      expect(response.status).toBe(200);
      const late = await pidFrom('late.pid');
      expect(elapsed).toBeLessThan(1500);
      expect(await waitFor(() => !isAlive(late), 5000)).toBe(true);
    });

    it('ends an orphan that holds none of its stdio, once the invocation has ended', async () => {
      const server = await serve(env);
      const response = await call(server, 'orphan');
      expect(response.status).toBe(200);
      const orphan = await pidFrom('orphan.pid');
      expect(await waitFor(() => !isAlive(orphan), 5000)).toBe(true);
    });

    it('counts an escaped process toward the memory cap, and ends it', async () => {
      const server = await serve(env);
      const response = await call(server, 'escaped-hog');
      expect(response.status).toBe(502);
      expect(response.body.error.code).toBe('MEMORY_LIMIT_EXCEEDED');
      const hog = await pidFrom('hog.pid');
      expect(await waitFor(() => !isAlive(hog), 5000)).toBe(true);
    });
  });

  linuxWithAddon('with several invocations at once', () => {
    it("leaves an orphan nobody can be sure of while another invocation that may own it runs, and ends it after", async () => {
      const server = await serve(env);
      const long = call(server, 'long');
      const [longMain, longChild] = [await pidFrom('long.pid'), await pidFrom('long-child.pid')];
      expect((await call(server, 'leaver')).status).toBe(200);
      const leaverChild = await pidFrom('leaver-child.pid');
      // No tag, no stdio, its own session: it could be either's, and `long` still runs.
      expect(await waitFor(() => !isAlive(leaverChild) || !isAlive(longChild) || !isAlive(longMain), 1000)).toBe(false);
      fs.writeFileSync(path.join(root, 'release'), '');
      expect((await long).status).toBe(200);
      expect(await waitFor(() => !isAlive(leaverChild) && !isAlive(longChild) && !isAlive(longMain), 5000)).toBe(true);
    });
  });

  linuxWithAddon('with warm processes waiting', () => {
    it('ends an orphan nobody can be sure of by replacing the warm processes that could have started it', async () => {
      const server = await serve(env);
      const plain = (): number[] => {
        try {
          return fs.readFileSync(path.join(root, 'plain.log'), 'utf8').split('\n').filter(Boolean).map(Number);
        } catch {
          return [];
        }
      };
      expect((await call(server, 'plain')).status).toBe(200);
      // The cold one answered; the second is the warm process the pool started after it.
      expect(await waitFor(() => plain().length === 2, 5000)).toBe(true);
      const warm = plain()[1];
      pids.push(warm);
      expect((await call(server, 'orphan')).status).toBe(200);
      const orphan = await pidFrom('orphan.pid');
      expect(await waitFor(() => !isAlive(orphan) && !isAlive(warm), 5000)).toBe(true);
      // Replaced, and the function still answers from a warm process.
      expect(await waitFor(() => plain().length === 3, 5000)).toBe(true);
      const answer = await call(server, 'plain');
      expect([answer.status, answer.body.output.pid]).toEqual([200, plain()[2]]);
    });
  });

  linuxWithAddon('with several invocations at once, on a timeout', () => {
    it('ends what left the group of an invocation it ends, while another invocation runs', async () => {
      const server = await serve(env);
      const long = call(server, 'long');
      const longChild = await pidFrom('long-child.pid');
      const response = await call(server, 'times-out');
      expect({ status: response.status, code: response.body.error?.code }).toEqual({ status: 504, code: 'TIMEOUT' });
      const timedOutChild = await pidFrom('timed-out-child.pid');
      expect(await waitFor(() => !isAlive(timedOutChild), 3000)).toBe(true);
      expect(isAlive(longChild)).toBe(true);
      fs.writeFileSync(path.join(root, 'release'), '');
      expect((await long).status).toBe(200);
    });
  });

  linuxWithAddon('when alyx is killed with SIGKILL', () => {
    it('leaves none of them running: neither in the tree nor orphaned', async () => {
      const server = await serve(env, ['--log-level', 'debug']);
      const pending = call(server, 'hangs').catch(() => null);
      const [main, inTree, adopted] = [await pidFrom('main.pid'), await pidFrom('tree.pid'), await pidFrom('adopted.pid')];
      // alyx lists an adopted orphan with its watchdog as soon as it sees it.
      await server.waitForLog((line) => line.pid === adopted && String(line.msg).includes('ended with alyx'));
      expect([isAlive(main), isAlive(inTree), isAlive(adopted)]).toEqual([true, true, true]);
      server.child.kill('SIGKILL');
      await server.exited();
      expect(await waitFor(() => !isAlive(main) && !isAlive(inTree) && !isAlive(adopted), 5000)).toBe(true);
      await pending;
    });
  });

  // Without the subreaper they are found only while the warm process lives, and under load it is
  // sometimes gone by the time the drain looks: what the test could promise there, it would not keep.
  describeIf(subreaper)("a warm process's helpers", () => {
    const drains = async (server: RunningServer, name: string): Promise<void> => {
      expect((await call(server, name)).status).toBe(200);
      // The cold invocation's helpers went with it; the warm process that replaced it has its own.
      const perProcess = name === 'python-helper' ? 2 : 1;
      expect(await waitFor(() => helperPids().length >= 2 * perProcess, 10_000)).toBe(true);
      const [cold, warm] = [helperPids().slice(0, perProcess), helperPids().slice(perProcess, 2 * perProcess)];
      // Orphaned as the invocation's main process exits: found only where alyx adopts orphans.
      if (adopts) expect(await waitFor(() => cold.every((pid) => !isAlive(pid)), 5000)).toBe(true);
      expect(warm.every((pid) => isAlive(pid))).toBe(true);

      server.child.kill('SIGHUP');
      expect(await waitFor(() => warm.every((pid) => !isAlive(pid)), 5000)).toBe(true);

      expect((await call(server, name)).status).toBe(200);
      expect(await waitFor(() => helperPids().length >= 4 * perProcess, 10_000)).toBe(true);
      expect(await server.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      // Cold, warm, cold, warm: without the subreaper only the warm ones' are found (their parent lives).
      const all = helperPids();
      const checked = adopts ? all : [...all.slice(perProcess, 2 * perProcess), ...all.slice(3 * perProcess, 4 * perProcess)];
      expect(await waitFor(() => checked.every((pid) => !isAlive(pid)), 5000)).toBe(true);
    };

    (onLinux ? it : it.skip)('are ended with it on SIGHUP and SIGTERM (node, new session, empty environment)', async () => {
      await drains(await serve(env), 'node-helper');
    });

    (onLinux && hasPython ? it : it.skip)('are ended with it on SIGHUP and SIGTERM (python Popen with start_new_session, with and without env)', async () => {
      await drains(await serve(env), 'python-helper');
    });
  });
});
