import fs from 'node:fs';
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
    // The protocol by hand: after its first answer it closes stdin and stays, as a process does
    // in the moment between its exit and alyx seeing it (its stdin is closed, its exit not yet known).
    'functions/closes-stdin/index.js': [
      "process.stdout.write('{\"alyx_reuse\":1}\\n');",
      "let buffered = '';",
      "process.stdin.on('data', (chunk) => {",
      '  buffered += chunk;',
      "  if (!buffered.includes('\\n')) return;",
      '  const request = JSON.parse(buffered);',
      "  process.stdout.write(JSON.stringify({ request_id: request.request_id, success: true, output: { pid: process.pid } }) + '\\n');",
      "  process.stdin.destroy();",
      "  require('node:fs').closeSync(0);",
      '  setInterval(() => {}, 1000);',
      '});',
      '',
    ].join('\n'),
    'functions/closes-stdin/manifest.yaml': 'reuse: true\n',
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

it('a request that cannot be written (the process closed its stdin while idle) goes to a new process, once', async () => {
  const { residents, invoker } = setUp(60_000);
  try {
    const first = await invoker.invoke('closes-stdin', {});
    const pid = (first.output as { pid: number }).pid;
    // Until its stdin is closed, a write would still go through.
    expect(await waitFor(() => !fs.readdirSync(`/proc/${pid}/fd`).includes('0'), 5000)).toBe(true);
    const second = await invoker.invoke('closes-stdin', {});
    expect(second.success).toBe(true);
    expect((second.output as { pid: number }).pid).not.toBe(pid);
    expect(await waitFor(() => !isAlive(pid), 5000)).toBe(true);
  } finally {
    await residents.close();
  }
});
