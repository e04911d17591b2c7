import { loadPosixAddon } from '../process/addon';

/**
 * Marks alyx not dumpable (prctl PR_SET_DUMPABLE 0, through the addon): its /proc/<pid>
 * environ, mem and fd become readable by root only, and no process of the same user can
 * ptrace it, so a function cannot read a secret out of alyx's environment or memory. That
 * holds for alyx itself too, for environ and mem: anything that needs its own (such as
 * eraseFromEnviron) must run first. Its stat, status and fd stay readable to it, and the
 * programs it starts are dumpable again after their exec, so it can still read theirs.
 * Returns false where the addon is not built.
 */
export function makeUndumpable(): boolean {
  const addon = loadPosixAddon() as { undumpable?: () => boolean } | null;
  if (typeof addon?.undumpable !== 'function') return false;
  try {
    return addon.undumpable();
  } catch {
    return false;
  }
}
