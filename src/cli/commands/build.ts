import path from 'node:path';
import { UsageError } from '../../errors';
import { runBuild } from '../../functions/build';
import { installSteps, runInstall } from '../../functions/install';
import { discoverFunctions } from '../../functions/discovery';
import type { FunctionDef } from '../../functions/types';
import { loadContext, type ProjectOptions } from '../context';

export interface BuildCommandOptions extends ProjectOptions {
  /** commander's --no-install. */
  install?: boolean;
}

/**
 * `alyx build [NAME...]`: installs what each function needs (unless --no-install), then runs its
 * build, one function after another; exit 1 if any fails.
 */
export async function buildCommand(names: string[], options: BuildCommandOptions): Promise<void> {
  const { config } = loadContext(options, 'production', 2);
  const install = options.install !== false;
  const python = config.runtimes.python?.command ?? 'python3';
  const all = discoverFunctions(config.functions.path);
  const needsWork = (fn: FunctionDef): boolean => fn.invalid !== null || Boolean(fn.build?.command) || (install && installSteps(fn, python).length > 0);
  const selected = names.length > 0 ? pickNamed(all, names, install) : all.filter(needsWork);
  if (selected.length === 0) {
    process.stdout.write('No function has a build in its manifest or anything to install: nothing to do.\n');
    return;
  }

  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let failed = 0;
  try {
    for (const fn of selected) {
      if (controller.signal.aborted) break;
      if (!(await buildOne(fn, config.projectDir, controller.signal, install ? installSteps(fn, python) : []))) failed++;
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (controller.signal.aborted) {
    process.stdout.write('Build cancelled.\n');
    process.exitCode = 130;
    return;
  }
  const built = selected.length - failed;
  process.stdout.write(`\n${built} built, ${failed} failed\n`);
  if (failed > 0) process.exitCode = 1;
}

function pickNamed(all: FunctionDef[], names: string[], install: boolean): FunctionDef[] {
  return names.map((name) => {
    const fn = all.find((candidate) => candidate.name === name);
    if (!fn) throw new UsageError(`No function named "${name}": run "alyx list" to see the functions.`);
    if (fn.invalid === null && !fn.build?.command && !(install && installSteps(fn).length > 0)) {
      throw new UsageError(`${name} has nothing to build: its manifest has no build.command, and it needs nothing installed.`);
    }
    return fn;
  });
}

async function buildOne(fn: FunctionDef, projectDir: string, signal: AbortSignal, steps: ReturnType<typeof installSteps>): Promise<boolean> {
  if (fn.invalid !== null) {
    process.stdout.write(`✗ ${fn.name}: invalid: ${fn.invalid}\n`);
    return false;
  }
  const where = path.relative(projectDir, fn.dir);
  const onLine = (line: string): void => void process.stdout.write(`  │ ${line}\n`);
  const started = performance.now();
  const installed = await runInstall(fn, steps, {
    projectDir,
    signal,
    onLine,
    onStep: (step) => process.stdout.write(`▸ ${fn.name}: installing: ${[step.command, ...step.args].join(' ')}  (in ${where})\n`),
  });
  if (installed) {
    process.stdout.write(`✗ ${fn.name}: installing failed: ${installed}\n`);
    return false;
  }
  const build = fn.build;
  if (!build?.command) {
    process.stdout.write(`✓ ${fn.name} installed in ${((performance.now() - started) / 1000).toFixed(2)}s\n`);
    return true;
  }
  process.stdout.write(`▸ ${fn.name}: ${[build.command, ...build.args].join(' ')}  (in ${where})\n`);
  const result = await runBuild(fn, { projectDir, signal, onLine });
  const seconds = (result.durationMs / 1000).toFixed(2);
  if (result.ok) {
    process.stdout.write(`✓ ${fn.name} built in ${seconds}s -> ${path.relative(projectDir, build.output)}\n`);
    return true;
  }
  const restored = result.restored ? ' (the previous output was put back)' : '';
  process.stdout.write(`✗ ${fn.name} failed after ${seconds}s: ${result.problem}${restored}\n`);
  return false;
}
