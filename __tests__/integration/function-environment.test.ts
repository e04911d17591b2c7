import { cleanEnv } from '../helpers/cli';
import { executable, makeProject, removeProject, type FixtureTree } from '../helpers/project';
import { request, startServer, stopAllServers, type RunningServer } from '../helpers/server';
import { hasCommand, warnSkip } from '../helpers/tools';

/**
 * SPEC §5: no ALYX_* variable reaches a function beyond ALYX_MODE and ALYX_FUNCTION, whatever
 * alyx itself was given, in both modes, from a warm process or a fresh one. Each function
 * answers with the names of the ALYX_* variables it was started with.
 */
const READ = `let data = '';
process.stdin.on('data', (chunk) => (data += chunk));
process.stdin.on('end', () => console.log(JSON.stringify({ success: true, output: { pid: process.pid, names: Object.keys(process.env).filter((key) => key.startsWith('ALYX_')).sort() } })));
`;
const PYTHON = `import json, os, sys
json.load(sys.stdin)
print(json.dumps({"success": True, "output": {"pid": os.getpid(), "names": sorted(k for k in os.environ if k.startswith("ALYX_"))}}))
`;
/** The block the kernel was given at exec (/proc/<pid>/environ), not what a runtime shows after. */
const SHELL = `#!/bin/sh
cat > /dev/null
names=$(tr '\\0' '\\n' < /proc/$$/environ | grep '^ALYX_' | cut -d= -f1 | sort | sed 's/.*/"&"/' | paste -sd, -)
echo "{\\"success\\": true, \\"output\\": {\\"pid\\": $$, \\"names\\": [$names]}}"
`;

const hasPython = hasCommand('python3');
if (!hasPython) warnSkip('the environment of a python function', 'python3');
const functions: FixtureTree = {
  '.env': 'ALYX_FROM_DOTENV=1\nFROM_DOTENV=1\n',
  'functions/env-node/index.js': READ,
  'functions/env-shell/manifest.yaml': 'runtime: binary\nbuild:\n  output: run.sh\n',
  'functions/env-shell/run.sh': executable(SHELL),
  ...(hasPython ? { 'functions/env-python/index.py': PYTHON } : {}),
};
const names = ['env-node', 'env-shell', ...(hasPython ? ['env-python'] : [])];

let root: string;
beforeAll(() => {
  root = makeProject(functions);
});
afterAll(() => removeProject(root));
afterEach(() => stopAllServers());

describe.each([
  ['serve', 'production'],
  ['dev', 'development'],
])('alyx %s', (command, mode) => {
  it.each([
    ['pooled', 'posix_spawn', '1', {}],
    ['not pooled', 'posix_spawn', '0', {}],
    ['pooled', "node's spawn", '1', { ALYX_POSIX_SPAWN: '0' }],
    ['not pooled', "node's spawn", '0', { ALYX_POSIX_SPAWN: '0' }],
  ])('%s, started with %s: a function sees ALYX_FUNCTION and ALYX_MODE and no other ALYX_ variable', async (_pooled, _way, pool, way) => {
    // alyx's own settings, given to it as ALYX_* variables, are alyx's.
    const args = command === 'dev' ? ['dev', '-C', root, '--no-watch'] : ['serve', '-C', root];
    const server: RunningServer = await startServer(args, { env: cleanEnv({ ...way, ALYX_FUNCTIONS_POOL: pool, ALYX_LOG_LEVEL: 'info' }) });
    for (const name of names) {
      // The first from a fresh process; with a pool, later ones from the warm process started after it.
      const pids = new Set<number>();
      for (let call = 0; call < 3; call++) {
        const response = await request(`${server.url}/api/functions/${name}`, { method: 'POST', body: '{}' });
        expect({ name, mode, status: response.status, names: response.body.output?.names }).toEqual({ name, mode, status: 200, names: ['ALYX_FUNCTION', 'ALYX_MODE'] });
        pids.add(response.body.output.pid);
      }
      expect(pids.size).toBe(3);
    }
  });
});
