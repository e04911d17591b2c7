import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LineSplitter } from '../line-splitter';
import { owner } from '../process/owner';
import { killGroup } from '../process/process-group';
import type { FunctionDef } from './types';

export interface BuildResult {
  readonly ok: boolean;
  readonly durationMs: number;
  /** Why the build failed, in one sentence; null on success. */
  readonly problem: string | null;
  /** The build's own stdout and stderr (the last 64 KiB). */
  readonly log: string;
  /** True when a failed build had damaged the previous output and alyx put it back. */
  readonly restored: boolean;
}

export interface BuildOptions {
  readonly projectDir: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Each line the build prints, as it prints it. */
  readonly onLine?: (line: string) => void;
  /** Aborting ends the build's whole process tree. */
  readonly signal?: AbortSignal;
  /** What else to do when the command cannot be started at all. */
  readonly fixHint?: string;
}

const LOG_TAIL_BYTES = 64 * 1024;

/**
 * Runs a function's build in its folder. A failed build never leaves a broken or missing
 * output behind: the previous output is copied aside first and put back if the build
 * removed or changed it.
 */
export async function runBuild(fn: FunctionDef, options: BuildOptions): Promise<BuildResult> {
  const started = performance.now();
  const build = fn.build;
  const elapsed = (): number => Math.round(performance.now() - started);
  if (!build?.command) {
    return { ok: false, durationMs: 0, problem: `${fn.name} has no build.command in its manifest`, log: '', restored: false };
  }
  const backup = backUp(build.output);
  try {
    const run = await spawnBuild(build.command, [...build.args], fn.dir, { fixHint: 'fix build.command', ...options });
    let problem = run.problem;
    if (!problem && !fs.existsSync(build.output)) {
      problem = `the build finished but did not produce ${path.relative(fn.dir, build.output)} (build.output)`;
    }
    if (problem) problem += uninstalledDependenciesHint(fn.dir, options.projectDir);
    const restored = problem !== null && backup !== null && restoreIfChanged(backup, build.output);
    return { ok: problem === null, durationMs: elapsed(), problem, log: run.log, restored };
  } finally {
    if (backup) fs.rmSync(path.dirname(backup), { recursive: true, force: true });
  }
}

/**
 * Runs one command of a build or an install in `dir`, with the function's own and the
 * project's node_modules/.bin on PATH, streaming its lines; resolves with why it failed (null
 * when it exited 0) and the last 64 KiB of its output.
 */
export function spawnBuild(
  command: string,
  args: string[],
  dir: string,
  options: BuildOptions,
): Promise<{ problem: string | null; log: string }> {
  // alyx's own settings and secrets (ALYX_*) are not the build's: its environment is readable by functions.
  const env = Object.fromEntries(Object.entries(options.env ?? process.env).filter(([key]) => !key.startsWith('ALYX_')));
  // Tools the function or the project installed locally (esbuild, tsc) are found like npm scripts find them.
  env.PATH = [path.join(dir, 'node_modules', '.bin'), path.join(options.projectDir, 'node_modules', '.bin'), env.PATH]
    .filter(Boolean)
    .join(path.delimiter);
  return new Promise((resolve) => {
    let log = '';
    const child = owner.startChild(command, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const onAbort = (): void => {
      if (child.pid !== undefined) void killGroup(child.pid);
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const lines = new LineSplitter((line) => options.onLine?.(line));
    const collect = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      log = (log + text).slice(-LOG_TAIL_BYTES);
      lines.push(text);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    let finished = false;
    const done = (problem: string | null): void => {
      if (finished) return;
      finished = true;
      options.signal?.removeEventListener('abort', onAbort);
      lines.flush();
      resolve({ problem, log });
    };
    child.on('error', (error: NodeJS.ErrnoException) => {
      done(`could not start "${command}" (${error.code ?? error.message}): install it${options.fixHint ? ` or ${options.fixHint}` : ''}`);
    });
    child.on('close', (code, signal) => {
      if (options.signal?.aborted) done('the build was cancelled');
      else if (signal) done(`"${command}" was ended by signal ${signal}`);
      else done(code === 0 ? null : `"${[command, ...args].join(' ')}" exited with code ${code}`);
    });
  });
}

/**
 * The usual reason a fresh clone's build fails: the function declares npm dependencies (its
 * esbuild, tsc) that nobody installed yet. Returns what to do, or '' when that is not the case.
 */
function uninstalledDependenciesHint(dir: string, projectDir: string): string {
  let manifest: { dependencies?: object; devDependencies?: object };
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as typeof manifest;
  } catch {
    return '';
  }
  const declared = Object.keys({ ...manifest.dependencies, ...manifest.devDependencies }).length > 0;
  if (!declared || fs.existsSync(path.join(dir, 'node_modules'))) return '';
  const where = path.relative(projectDir, dir) || '.';
  return `; its package.json declares dependencies but ${where}/node_modules is missing: run "alyx build" without --no-install, or "npm install" in ${where}`;
}

/** Copies the current output aside; null when there is none. */
function backUp(output: string): string | null {
  try {
    if (!fs.statSync(output).isFile()) return null;
  } catch {
    return null;
  }
  const copy = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'alyx-build-')), path.basename(output));
  fs.copyFileSync(output, copy);
  return copy;
}

function restoreIfChanged(backup: string, output: string): boolean {
  const previous = fs.readFileSync(backup);
  let current: Buffer | null = null;
  try {
    current = fs.readFileSync(output);
  } catch {
    // removed by the build
  }
  if (current && current.equals(previous)) return false;
  fs.mkdirSync(path.dirname(output), { recursive: true });
  fs.copyFileSync(backup, output);
  fs.chmodSync(output, fs.statSync(backup).mode);
  return true;
}
