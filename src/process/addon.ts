import path from 'node:path';

/** Built by scripts/build-addon.cjs; tests that load alyx from its TypeScript source use the build's copy too. */
const ADDON_FILE = path.resolve(__dirname, '..', '..', 'dist', 'native', 'posix-spawn.node');

/** What native/posix-spawn.c exports. */
export interface PosixAddon {
  /** [pid, stdin fd, stdout fd, stderr fd, then the inodes of the child's ends of those sockets]. */
  spawn(file: string, argv: string[], envp: string[], cwd: string): [number, number, number, number, number?, number?, number?];
  reap(pid: number): [number | null, number | null] | null;
  subreaper(): boolean;
}

let addon: PosixAddon | null | undefined;

/**
 * The addon, loaded once; null where it is not built (no C compiler or node's headers) or not
 * for this platform. Whether function processes start with it is native-process.ts's choice.
 */
export function loadPosixAddon(): PosixAddon | null {
  if (addon !== undefined) return addon;
  addon = null;
  if (process.platform !== 'linux') return addon;
  try {
    const loaded = { exports: {} };
    process.dlopen(loaded, ADDON_FILE);
    const exports = loaded.exports as Partial<PosixAddon>;
    // An addon from an older build lacks what this one needs: treat it as absent.
    if (typeof exports.spawn === 'function' && typeof exports.reap === 'function' && typeof exports.subreaper === 'function') addon = exports as PosixAddon;
  } catch {
    // Not built here, or built for another platform.
  }
  return addon;
}
