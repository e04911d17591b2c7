import type { Logger } from '../logger';
import { loadPosixAddon } from './addon';
import { noteNodeChildren } from './own-children';
import { sweepOrphans } from './orphans';

/**
 * Makes alyx a child subreaper (Linux, where the addon is built): a process a function starts
 * and leaves behind, whatever it does to its environment or session, becomes alyx's child when
 * its parent exits instead of init's, so it can still be found, counted and ended, and alyx
 * reaps it. Without the addon, processes that leave a function's group are found by the tag in
 * their environment alone (see leftovers.ts).
 */

/** How often adopted orphans are looked for when no SIGCHLD says so (one short read). */
const SWEEP_MS = 100;
/**
 * After a SIGCHLD, how soon: every function process's exit sends one, and a look per exit
 * would cost more than a zombie waiting this long does.
 */
const SIGCHLD_SWEEP_MS = 20;
let installed: boolean | undefined;
let sweepScheduled = false;
let logger: Logger | undefined;

/** Whether alyx is a subreaper; call once at start, before any function process is. */
export function installSubreaper(): boolean {
  if (installed !== undefined) return installed;
  installed = false;
  const addon = loadPosixAddon();
  if (!addon) return installed;
  try {
    addon.subreaper();
  } catch {
    return installed;
  }
  noteNodeChildren();
  installed = true;
  // An orphan that exits is a zombie child of alyx until it is reaped.
  process.on('SIGCHLD', scheduleSweep);
  setInterval(sweep, SWEEP_MS).unref();
  return installed;
}

/** Where to say what alyx did with the orphans it adopted. */
export function reportOrphansTo(destination: Logger): void {
  logger = destination;
}

/** Whether alyx adopts what its function processes leave behind. */
export function isSubreaper(): boolean {
  return installed === true;
}

function scheduleSweep(): void {
  if (sweepScheduled) return;
  sweepScheduled = true;
  setTimeout(sweep, SIGCHLD_SWEEP_MS).unref();
}

function sweep(): void {
  sweepScheduled = false;
  sweepOrphans(logger);
}
