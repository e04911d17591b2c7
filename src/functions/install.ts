import fs from 'node:fs';
import path from 'node:path';
import { spawnBuild, type BuildOptions } from './build';
import type { FunctionDef } from './types';

/** One command that installs what a function needs, run in its folder. */
export interface InstallStep {
  readonly command: string;
  readonly args: readonly string[];
}

/**
 * What `alyx build` installs before building, found from the function's folder, for what is
 * not installed yet: npm packages (npm ci with a lockfile, else npm install), a python
 * `.venv` with the packages of requirements.txt, and Go modules (go mod download, which does
 * nothing when they are already in the module cache).
 */
export function installSteps(fn: FunctionDef, python = 'python3'): InstallStep[] {
  const has = (file: string): boolean => fs.existsSync(path.join(fn.dir, file));
  const steps: InstallStep[] = [];
  if (has('package.json') && !has('node_modules')) {
    const locked = has('package-lock.json') || has('npm-shrinkwrap.json');
    steps.push({ command: 'npm', args: locked ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund'] });
  }
  if (has('requirements.txt') && !has('.venv')) {
    steps.push({ command: python, args: ['-m', 'venv', '.venv'] });
    steps.push({ command: path.join('.venv', 'bin', 'python'), args: ['-m', 'pip', 'install', '--disable-pip-version-check', '-r', 'requirements.txt'] });
  }
  if (has('go.mod')) steps.push({ command: 'go', args: ['mod', 'download'] });
  return steps;
}

/** Runs the steps in order; resolves with why the first that failed did (null when all ran). */
export async function runInstall(fn: FunctionDef, steps: readonly InstallStep[], options: BuildOptions & { onStep?: (step: InstallStep) => void }): Promise<string | null> {
  for (const step of steps) {
    options.onStep?.(step);
    // The venv's own python is a path inside the folder: resolve it there.
    const command = step.command.includes(path.sep) ? path.join(fn.dir, step.command) : step.command;
    const { problem } = await spawnBuild(command, [...step.args], fn.dir, { ...options, fixHint: 'run "alyx build --no-install" and install it yourself' });
    if (problem) return problem;
  }
  return null;
}
