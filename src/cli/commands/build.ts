import path from 'node:path';
import { UsageError } from '../../errors';
import { runBuild } from '../../functions/build';
import { discoverFunctions } from '../../functions/discovery';
import type { FunctionDef } from '../../functions/types';
import { loadContext, type ProjectOptions } from '../context';

/** `alyx build [NAME...]`: runs the build configs, one function after another; exit 1 if any fails. */
export async function buildCommand(names: string[], options: ProjectOptions): Promise<void> {
  const { config } = loadContext(options, 'production', 2);
  const all = discoverFunctions(config.functions.path);
  const selected = names.length > 0 ? pickNamed(all, names) : all.filter((fn) => fn.invalid !== null || fn.build?.command);
  if (selected.length === 0) {
    process.stdout.write('No function has a build in its manifest: nothing to build.\n');
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
      if (!(await buildOne(fn, config.projectDir, controller.signal))) failed++;
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

function pickNamed(all: FunctionDef[], names: string[]): FunctionDef[] {
  return names.map((name) => {
    const fn = all.find((candidate) => candidate.name === name);
    if (!fn) throw new UsageError(`No function named "${name}": run "alyx list" to see the functions.`);
    if (fn.invalid === null && !fn.build?.command) {
      throw new UsageError(`${name} has nothing to build: its manifest has no build.command.`);
    }
    return fn;
  });
}

async function buildOne(fn: FunctionDef, projectDir: string, signal: AbortSignal): Promise<boolean> {
  if (fn.invalid !== null) {
    process.stdout.write(`✗ ${fn.name}: invalid: ${fn.invalid}\n`);
    return false;
  }
  const build = fn.build as NonNullable<FunctionDef['build']>;
  const where = path.relative(projectDir, fn.dir);
  process.stdout.write(`▸ ${fn.name}: ${[build.command, ...build.args].join(' ')}  (in ${where})\n`);
  const result = await runBuild(fn, {
    projectDir,
    signal,
    onLine: (line) => process.stdout.write(`  │ ${line}\n`),
  });
  const seconds = (result.durationMs / 1000).toFixed(2);
  if (result.ok) {
    process.stdout.write(`✓ ${fn.name} built in ${seconds}s -> ${path.relative(projectDir, build.output)}\n`);
    return true;
  }
  const restored = result.restored ? ' (the previous output was put back)' : '';
  process.stdout.write(`✗ ${fn.name} failed after ${seconds}s: ${result.problem}${restored}\n`);
  return false;
}
