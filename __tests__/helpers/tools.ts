import { spawnSync } from 'node:child_process';

/** Whether a program is on PATH. */
export function hasCommand(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** Announces a skipped group of tests so that nobody mistakes a skip for a pass. */
export function warnSkip(what: string, missing: string): void {
  // CI installs every tool (.ci/run): there a missing one is a failure, never a quiet skip.
  if (process.env.REQUIRE_ALL_TOOLS === '1') throw new Error(`${what}: ${missing} is not installed, and REQUIRE_ALL_TOOLS=1`);
  process.stderr.write(`\n*** SKIP: ${what}: ${missing} is not installed (CI installs it) ***\n\n`);
}

/** Names what a test really ran, so that the output shows each runtime CI exercised. */
export function announceExercised(what: string, runtimes: string[]): void {
  process.stderr.write(`\n*** RAN: ${what}: ${runtimes.join(', ')} ***\n\n`);
}
