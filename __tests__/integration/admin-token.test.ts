import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ALYX_BIN, cleanEnv, REPO_ROOT } from '../helpers/cli';
import { nodeFunction } from '../helpers/fixtures';
import { waitFor } from '../helpers/processes';
import { executable, makeProject, removeProject } from '../helpers/project';
import { request, startServer, stopAllServers, type RunningServer } from '../helpers/server';
import { hasCommand } from '../helpers/tools';

/**
 * SPEC §6: the admin token. A function runs as alyx's user, and /proc shows every process's
 * environment and command line to the processes of the same user: a probe function reads all
 * it can and must not find the token, whether it was given in ALYX_ADMIN_TOKEN or in the file
 * ALYX_ADMIN_TOKEN_FILE names, in production and in development. As root nothing stops a
 * function, so alyx (and its functions) run here as an unprivileged user.
 */
const TOKEN = `admin-token-${process.pid}-${Date.now()}`;
const NOBODY = 65534;
const ADDON_FILE = path.join(REPO_ROOT, 'build', 'Release', 'posix_spawn.node');

/** Reads every /proc/<pid>/environ and cmdline it may, and reports where `input.needle` appears. */
const PROBE = nodeFunction(`
  const fs = require('node:fs');
  const needle = Buffer.from(request.input.needle);
  const scan = () => {
    const found = [];
    let read = 0;
    let watchdog = false;
    for (const pid of fs.readdirSync('/proc').filter((entry) => /^\\d+$/.test(entry))) {
      for (const file of ['environ', 'cmdline']) {
        let content;
        try { content = fs.readFileSync('/proc/' + pid + '/' + file); } catch { continue; }
        read++;
        if (content.includes(needle)) found.push(pid + '/' + file);
        if (file === 'cmdline' && content.includes('alyx-watchdog')) watchdog = true;
      }
    }
    return { found, read, watchdog };
  };
  // The watchdog starts just after this process: wait for it, so that it is read too.
  const deadline = Date.now() + 3000;
  const attempt = () => {
    const result = scan();
    if (result.watchdog || Date.now() > deadline) {
      let parentEnviron = 'readable';
      try { fs.readFileSync('/proc/' + process.ppid + '/environ'); } catch (error) { parentEnviron = error.code; }
      console.log(JSON.stringify({ success: true, output: { ...result, uid: process.getuid(), parent_environ: parentEnviron } }));
    } else setTimeout(attempt, 20);
  };
  attempt();
`);

const PROJECT = {
  'functions/probe/index.js': PROBE,
  // In development its build runs at start (the output is missing): it records its environment.
  'functions/built/manifest.yaml': 'runtime: binary\nbuild:\n  command: sh\n  args: [-c, "env > build-env.txt && cp run.in run.sh && chmod 755 run.sh"]\n  output: run.sh\n',
  'functions/built/run.in': executable('#!/bin/sh\ncat > /dev/null\necho \'{"success": true}\'\n'),
};

/** How to run alyx as a user who is not root, or why that cannot be done here. */
function unprivileged(): { prefix: string[]; uid: number } | { missing: string } {
  const uid = process.getuid?.() ?? -1;
  if (uid !== 0) return { prefix: [], uid };
  if (!hasCommand('setpriv')) return { missing: 'setpriv (util-linux), to run alyx as a user other than root' };
  const prefix = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--'];
  const probe = spawnSync(prefix[0], [...prefix.slice(1), process.execPath, '-e', `require(${JSON.stringify(path.join(REPO_ROOT, 'dist', 'cli', 'index.js'))})`]);
  if (probe.status !== 0) return { missing: `a user (uid ${NOBODY}) who can run node and read ${REPO_ROOT}: ${probe.stderr.toString().trim()}` };
  return { prefix, uid: NOBODY };
}

const runAs = unprivileged();
if ('missing' in runAs) {
  if (process.env.REQUIRE_ALL_TOOLS === '1') throw new Error(`admin token tests: ${runAs.missing}`);
  process.stderr.write(`\n*** SKIP: a function cannot read the admin token: cannot run alyx unprivileged here: ${runAs.missing} ***\n\n`);
}
const describeUnprivileged = 'missing' in runAs ? describe.skip : describe;

let root: string;

beforeEach(() => {
  root = makeProject(PROJECT);
  if (!('missing' in runAs) && runAs.uid === NOBODY) spawnSync('chown', ['-R', `${NOBODY}:${NOBODY}`, root]);
});

afterEach(async () => {
  await stopAllServers();
  removeProject(root);
});

/** The token as a file only alyx's user may read, as a secrets mount gives it (with a last newline). */
function tokenFile(): string {
  const file = path.join(root, 'secrets', 'admin-token');
  fs.mkdirSync(path.dirname(file), { mode: 0o700 });
  fs.writeFileSync(file, `${TOKEN}\n`, { mode: 0o600 });
  if (!('missing' in runAs) && runAs.uid === NOBODY) spawnSync('chown', ['-R', `${NOBODY}:${NOBODY}`, path.dirname(file)]);
  return file;
}

/** Starts `alyx <command>` as the unprivileged user, exec'd from the test (no wrapper holds the environment). */
function startUnprivileged(command: 'serve' | 'dev', env: NodeJS.ProcessEnv, wrap: (argv: string[]) => string[] = (argv) => argv): Promise<RunningServer> {
  const { prefix } = runAs as { prefix: string[] };
  const argv = wrap([process.execPath, ALYX_BIN, command, '-C', root, '--port', '0', '--host', '127.0.0.1', '--log-format', 'json']);
  const [program, ...args] = [...prefix, ...argv];
  return startServer(args, { command: program, env: cleanEnv({ HOME: root, ...env }), cwd: root });
}

async function probe(server: RunningServer): Promise<{ found: string[]; read: number; watchdog: boolean; uid: number; parent_environ: string }> {
  const result = await request(`${server.url}/api/functions/probe`, { method: 'POST', body: JSON.stringify({ needle: TOKEN }) });
  expect(result.status).toBe(200);
  return result.body.output;
}

const reload = (server: RunningServer, token: string | null): Promise<{ status: number; body: any }> => // eslint-disable-line @typescript-eslint/no-explicit-any
  request(`${server.url}/api/admin/reload`, { method: 'POST', headers: token === null ? {} : { authorization: `Bearer ${token}` } });

describeUnprivileged('a function running as alyx\'s user cannot read the admin token from any environment or command line', () => {
  const given: Array<[string, () => NodeJS.ProcessEnv]> = [
    ['ALYX_ADMIN_TOKEN', () => ({ ALYX_ADMIN_TOKEN: TOKEN })],
    ['ALYX_ADMIN_TOKEN_FILE', () => ({ ALYX_ADMIN_TOKEN_FILE: tokenFile() })],
  ];

  it.each(given)('serve, token in %s: the probe finds it nowhere, and POST /api/admin/reload accepts it', async (_how, env) => {
    const server = await startUnprivileged('serve', env());
    const seen = await probe(server);
    expect(seen.uid).toBe((runAs as { uid: number }).uid);
    expect(seen.watchdog).toBe(true);
    expect(seen.read).toBeGreaterThan(4);
    expect(seen.found).toEqual([]);
    // Where the addon is built alyx is not dumpable: its environment is root's to read alone.
    if (fs.existsSync(ADDON_FILE)) expect(seen.parent_environ).toBe('EACCES');

    expect((await reload(server, TOKEN)).body).toEqual({ success: true, count: 2 });
    expect((await reload(server, `${TOKEN}x`)).body.error.code).toBe('UNAUTHORIZED');
    expect((await reload(server, null)).status).toBe(401);
    // Nothing alyx could not protect was reported.
    expect(server.logs().filter((line) => line.exposures !== undefined)).toEqual([]);
  });

  it.each(given)('dev, token in %s: the probe finds it nowhere, and no build got an ALYX_ variable', async (_how, env) => {
    const server = await startUnprivileged('dev', env());
    await waitFor(() => fs.existsSync(path.join(root, 'functions', 'built', 'run.sh')), 10_000);
    const seen = await probe(server);
    expect(seen.watchdog).toBe(true);
    expect(seen.found).toEqual([]);
    const buildEnv = fs.readFileSync(path.join(root, 'functions', 'built', 'build-env.txt'), 'utf8');
    expect(buildEnv).not.toContain(TOKEN);
    expect(buildEnv.split('\n').filter((line) => line.startsWith('ALYX_'))).toEqual([]);
    expect((await reload(server, null)).body).toEqual({ success: true, count: 2 });
  });

  it('a process that started alyx and still shows the token is named in one warning at start', async () => {
    // sh runs alyx and waits for it (it cannot exec it, with a command after): its environment keeps the token.
    const server = await startUnprivileged('serve', { ALYX_ADMIN_TOKEN: TOKEN }, (argv) => ['/bin/sh', '-c', `${argv.map((arg) => `'${arg}'`).join(' ')}; exit $?`]);
    const warnings = server.logs().filter((line) => line.exposures !== undefined);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, msg: expect.stringMatching(/^functions can still read the admin token: process \d+ \(sh\), which started alyx.*ALYX_ADMIN_TOKEN_FILE/) });
    expect(JSON.stringify(warnings[0])).not.toContain(TOKEN);
  });
});

const describeAsRoot = process.getuid?.() === 0 ? describe : describe.skip;

describeAsRoot('alyx running as root with an admin token', () => {
  it('says in one warning at start that its functions can read anything, and where to read more', async () => {
    const server = await startServer(['serve', '-C', root], { env: cleanEnv({ ALYX_ADMIN_TOKEN: TOKEN }) });
    const warnings = server.logs().filter((line) => line.exposures !== undefined);
    expect(warnings).toHaveLength(1);
    expect(warnings[0].msg).toMatch(/alyx runs as root, and so do its functions: they can read anything.*docs\/security\.md/);
    expect((await reload(server, TOKEN)).status).toBe(200);
  });
});

describe("alyx's own environment block", () => {
  it('no longer shows ALYX_ADMIN_TOKEN in /proc/<pid>/environ once alyx has read it, even to root, addon or not', async () => {
    // The same step alyx takes at start, alone, without the addon that would also hide the block from non-root readers.
    const script = `
      const { eraseFromEnviron } = require(${JSON.stringify(path.join(REPO_ROOT, 'dist', 'host', 'environ-block.js'))});
      const erased = eraseFromEnviron(['ALYX_ADMIN_TOKEN', 'ALYX_ADMIN_TOKEN_FILE']);
      process.stdout.write(JSON.stringify({ erased, kept: process.env.KEPT, gone: process.env.ALYX_ADMIN_TOKEN ?? null }) + '\\n');
      setTimeout(() => {}, 10000);`;
    const child = spawn(process.execPath, ['-e', script], { env: cleanEnv({ ALYX_ADMIN_TOKEN: TOKEN, ALYX_ADMIN_TOKEN_FILE: '/run/secrets/x', KEPT: 'kept' }), stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString()));
        child.once('exit', (code) => reject(new Error(`the script exited with ${code} before it reported`)));
      });
      expect(JSON.parse(line)).toEqual({ erased: true, kept: 'kept', gone: null });
      const environ = fs.readFileSync(`/proc/${child.pid}/environ`, 'utf8');
      expect(environ).not.toContain(TOKEN);
      expect(environ).not.toContain('ALYX_ADMIN_TOKEN');
      expect(environ.split('\0')).toContain('KEPT=kept');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
