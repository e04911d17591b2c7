import { spawn } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/cli';
import { hasCommand, warnSkip } from '../helpers/tools';

/**
 * The addon under valgrind's memcheck: every function through its success and failure paths
 * (__tests__/helpers/addon-exercise.cjs). No memory error may be reported, and no block the
 * addon allocated may be lost. node's own allocations (V8's snapshot pages, which valgrind
 * counts as lost at exit) are not the addon's and are left out by the stack they come from.
 */

const EXERCISE = path.join(REPO_ROOT, '__tests__', 'helpers', 'addon-exercise.cjs');
/**
 * Every path of the addon runs in each round, and start() takes its request larger than the
 * socket in round 3: four rounds cover all. Each process a round starts forks a node under
 * memcheck, whose copy of the address space takes seconds on this kind of machine.
 */
const ROUNDS = 4;
const ADDON_FRAME = /posix[-_]spawn|alyx\.glibc\.node/;

const available = process.platform === 'linux' && hasCommand('valgrind');
if (!available) warnSkip('the addon under valgrind memcheck', 'valgrind');

(available ? describe : describe.skip)('the addon under valgrind memcheck', () => {
  it('reports no memory error and loses nothing it allocated', async () => {
    const output = await new Promise<{ code: number | null; log: string; stdout: string }>((resolve) => {
      const child = spawn('valgrind', ['--error-exitcode=99', '--leak-check=full', '--show-leak-kinds=definite', '--errors-for-leak-kinds=none', process.execPath, EXERCISE, String(ROUNDS)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let log = '';
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
      // Under memcheck node runs some 50 times slower, and slower still beside the other suites.
      const timer = setTimeout(() => child.kill('SIGKILL'), 420_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, log, stdout });
      });
    });
    expect(JSON.parse(output.stdout)).toEqual({ started: 2 * ROUNDS, refused: 5 * ROUNDS });
    // Exit 99: a memory error (an invalid read or write, a jump on uninitialised memory).
    expect([output.code, output.log.match(/ERROR SUMMARY: \d+ errors/)?.[0]]).toEqual([0, 'ERROR SUMMARY: 0 errors']);
    const lossRecords = output.log.split(/\n==\d+== \n/).filter((record) => /definitely lost in loss record/.test(record));
    expect(lossRecords.filter((record) => ADDON_FRAME.test(record))).toEqual([]);
  }, 430_000);
});
