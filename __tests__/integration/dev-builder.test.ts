import fs from 'node:fs';
import path from 'node:path';
import { DevBuilder } from '../../src/dev/builder';
import type { FunctionDef } from '../../src/functions/types';
import { captureLogs } from '../helpers/logs';
import { makeProject, removeProject } from '../helpers/project';

/**
 * The development builder's queueing, with real builds: a shell command that notes when it
 * starts and ends in builds.log, and waits for the file `release` before it ends.
 */

let root: string;
let builder: DevBuilder;
afterEach(() => {
  builder.close();
  removeProject(root);
});

function setUp(): { fn: FunctionDef; log: () => string[]; release: () => void } {
  root = makeProject({ 'functions/app/index.js': '' });
  const dir = path.join(root, 'functions', 'app');
  const script = 'echo start >> ../../builds.log; while [ ! -e ../../release ]; do sleep 0.01; done; echo end >> ../../builds.log; mkdir -p dist; echo ok > dist/out';
  const fn: FunctionDef = {
    name: 'app', dir, runtime: 'node', entry: path.join(dir, 'index.js'), manifestFile: null, description: null, timeoutMs: null,
    memoryBytes: null, concurrency: null, pool: null, reuse: false, env: {}, schedules: [], retries: null, routes: [], webhooks: [], auth: 'optional', ignoredHooks: [], invalid: null,
    build: { command: 'sh', args: ['-c', script], watch: null, output: path.join(dir, 'dist', 'out') },
  };
  const { logger } = captureLogs();
  builder = new DevBuilder({ projectDir: root, logger, lookup: () => fn, onBuilt: () => undefined, debounceMs: 20 });
  const logFile = path.join(root, 'builds.log');
  return {
    fn,
    log: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').trim().split('\n') : []),
    release: () => fs.writeFileSync(path.join(root, 'release'), ''),
  };
}

describe('DevBuilder', () => {
  it('is idle at once when nothing was scheduled', async () => {
    setUp();
    await expect(builder.whenIdle('app')).resolves.toBeUndefined();
  });

  it('merges changes within the debounce into one build, and whenIdle waits for it', async () => {
    const { log, release } = setUp();
    release();
    for (let i = 0; i < 5; i++) builder.schedule('app');
    await builder.whenIdle('app');
    expect(log()).toEqual(['start', 'end']);
  });

  it('a change during a build queues exactly one more, however many arrive', async () => {
    const { log, release } = setUp();
    const first = builder.build('app');
    const idle = builder.whenIdle('app');
    for (let i = 0; i < 3; i++) void builder.build('app');
    release();
    await Promise.all([first, idle]);
    expect(log()).toEqual(['start', 'end', 'start', 'end']);
  });

  it('close stops a pending build: nothing runs, and whenIdle resolves', async () => {
    const { log } = setUp();
    builder.schedule('app');
    const idle = builder.whenIdle('app');
    builder.close();
    await idle;
    expect(log()).toEqual([]);
  });
});
