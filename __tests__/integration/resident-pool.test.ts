import { resolveConfig } from '../../src/config/resolve';
import { FunctionRegistry, loadSnapshot } from '../../src/functions/registry';
import { Invoker } from '../../src/invoke/invoker';
import { ResidentPool } from '../../src/process/resident-pool';
import { cleanEnv, REPO_ROOT } from '../helpers/cli';
import { captureLogs } from '../helpers/logs';
import { isAlive, waitFor } from '../helpers/processes';
import { makeProject, removeProject } from '../helpers/project';

/** The reuse processes' own lifetime (SPEC §10), with the idle period shortened (it is 60 s in alyx). */
let root: string;
beforeAll(() => {
  root = makeProject({
    'node_modules/alyx': { symlink: REPO_ROOT },
    'functions/idle/index.js': "const { handler } = require('alyx/handler');\nmodule.exports = handler(async () => ({ pid: process.pid }));\n",
    'functions/idle/manifest.yaml': 'reuse: true\n',
  });
});
afterAll(() => removeProject(root));

const setUp = (idleMs: number) => {
  const config = resolveConfig({ projectDir: root, mode: 'production', env: cleanEnv() });
  const { logger } = captureLogs();
  const residents = new ResidentPool({ logger, idleMs });
  const invoker = new Invoker(config, new FunctionRegistry(() => loadSnapshot(config, cleanEnv())), logger, cleanEnv(), { residents });
  return { residents, invoker };
};

it('a process idle for the idle period ends; the next invocation starts another', async () => {
  const { residents, invoker } = setUp(300);
  try {
    const first = await invoker.invoke('idle', {});
    expect(first.success).toBe(true);
    const pid = (first.output as { pid: number }).pid;
    expect(residents.size).toBe(1);
    expect(await waitFor(() => !isAlive(pid), 5000)).toBe(true);
    expect(await waitFor(() => residents.size === 0, 1000)).toBe(true);
    const second = await invoker.invoke('idle', {});
    expect((second.output as { pid: number }).pid).not.toBe(pid);
  } finally {
    await residents.close();
  }
});

it('two invocations at once run in two processes, and close() ends them all', async () => {
  const { residents, invoker } = setUp(60_000);
  const answers = await Promise.all([invoker.invoke('idle', {}), invoker.invoke('idle', {})]);
  const pids = answers.map((answer) => (answer.output as { pid: number }).pid);
  expect(pids.every(isAlive)).toBe(true);
  await residents.close();
  expect(pids.some(isAlive)).toBe(false);
  expect(residents.size).toBe(0);
});
