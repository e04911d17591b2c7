import path from 'node:path';
import loadBinding from 'node-gyp-build';

/**
 * alyx's package folder: node-gyp-build finds the addon there, built here (build/Release, by
 * scripts/build-addon.cjs) or prebuilt for this platform (prebuilds/, in the package).
 */
const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');

/** What native/posix-spawn.c exports. */
export interface PosixAddon {
  /**
   * [pid, stdin fd, stdout fd, stderr fd, then the inodes of the child's ends of those sockets,
   * then how many bytes of `input` went in]. With an input, what stdin's socket takes of it goes
   * in before the program runs; when that is all of it, its end follows and stdin's fd is -1.
   */
  spawn(file: string, argv: string[], envp: string[], cwd: string, input?: string): [number, number, number, number, number?, number?, number?, number?];
  /**
   * As spawn, on a thread of libuv's pool: [pid, stdin fd (or -1), bytes of the input written]
   * comes later, and stdin's place holds -1 until then. On a rejection the stdout and stderr
   * fds are the caller's to close.
   */
  start(file: string, argv: string[], envp: string[], cwd: string, input: string): [Promise<[number, number, number]>, number, number, number, number?, number?, number?, number?];
  reap(pid: number): [number | null, number | null] | null;
  subreaper(): boolean;
}

let addon: PosixAddon | null | undefined;
/** Why the addon could not be loaded (no build and no prebuild for this platform), for the start-up line. */
let whyMissing: string | null = null;

/**
 * The addon, loaded once; null where it is not built (no C compiler or node's headers) or not
 * for this platform. Whether function processes start with it is native-process.ts's choice.
 */
export function loadPosixAddon(): PosixAddon | null {
  if (addon !== undefined) return addon;
  addon = null;
  if (process.platform !== 'linux') return addon;
  try {
    const exports = loadBinding(PACKAGE_ROOT) as Partial<PosixAddon>;
    // An addon from an older build lacks what this one needs: treat it as absent.
    if (typeof exports.spawn === 'function' && typeof exports.start === 'function' && typeof exports.reap === 'function' && typeof exports.subreaper === 'function') addon = exports as PosixAddon;
    else whyMissing = 'the addon found is from an older build of alyx';
  } catch (error) {
    whyMissing = (error as Error).message.split('\n')[0];
  }
  return addon;
}

/** Why loadPosixAddon found no addon; null when it did (or has not looked). */
export function addonMissingReason(): string | null {
  return whyMissing;
}
