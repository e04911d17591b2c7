import { spawnSync } from 'node:child_process';

/** Whether a program is on PATH. */
export function hasCommand(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** Announces a skipped group of tests so that nobody mistakes a skip for a pass. */
export function warnSkip(what: string, missing: string): void {
  process.stderr.write(`\n*** SKIP: ${what}: ${missing} is not installed (CI installs it) ***\n\n`);
}
