import fs from 'node:fs';

/** O_CLOEXEC as /proc/<pid>/fdinfo's octal `flags` shows it (the same on every Linux architecture). */
const O_CLOEXEC = 0o2000000;

/**
 * Closes the fds above 2 that alyx inherited from its own parent without close-on-exec (a
 * shell's `3>file`, a supervisor's leaked pipe), which node's spawn would otherwise pass on to
 * every function: a function gets fds 0-2 only. node's own fds all have close-on-exec, and so
 * does its IPC channel's, which is kept all the same. Linux only; returns the fds closed.
 */
export function closeInheritedFds(): number[] {
  if (process.platform !== 'linux') return [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc/self/fd');
  } catch {
    return [];
  }
  const channel = Number(process.env.NODE_CHANNEL_FD ?? -1);
  const closed: number[] = [];
  for (const entry of entries) {
    const fd = Number(entry);
    if (!Number.isInteger(fd) || fd <= 2 || fd === channel) continue;
    let flags: number;
    try {
      const match = /^flags:\s+([0-7]+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1'));
      if (!match) continue;
      flags = parseInt(match[1], 8);
    } catch {
      continue; // the directory's own fd, closed once listed
    }
    if ((flags & O_CLOEXEC) !== 0) continue;
    try {
      fs.closeSync(fd);
      closed.push(fd);
    } catch {
      // already closed
    }
  }
  return closed;
}
