import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const ALYX_BIN = path.join(REPO_ROOT, 'bin', 'alyx.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
}

/** alyx's environment for tests: the machine's, without any ALYX_* setting of the developer's. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('ALYX_')));
  return { ...env, ...extra };
}

/** Runs the built CLI to completion (killed after `timeoutMs`). */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'index.js'))) {
    throw new Error('dist/ is missing: run "npm run build" (make test does) before the integration tests');
  }
  return runCommand(process.execPath, [ALYX_BIN, ...args], options);
}

/** Runs a program to completion in its own process group; the whole group is killed after `timeoutMs`. */
export function runCommand(command: string, args: string[], options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? REPO_ROOT,
      env: options.env ?? cleanEnv(),
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(killGroup, options.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    // A program that exits without reading its input (EPIPE) answers by its exit all the same.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/**
 * A user's shell environment: no ALYX_*, and none of what `npm test` or npx add (npm_* variables,
 * alyx's own node_modules/.bin on PATH), so a test sees only the tools a user would have.
 */
export function shellEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(cleanEnv()).filter(([key]) => !key.toLowerCase().startsWith('npm_')));
  const addedByNpm = (dir: string): boolean =>
    dir.includes('node-gyp-bin') || (dir.endsWith(path.join('node_modules', '.bin')) && !path.relative(path.resolve(dir, '..', '..'), REPO_ROOT).startsWith('..'));
  const dirs = (env.PATH ?? '').split(path.delimiter).filter((dir) => dir !== '' && !addedByNpm(dir));
  return { ...env, PATH: dirs.join(path.delimiter), ...extra };
}
