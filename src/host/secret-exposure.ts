import fs from 'node:fs';

/**
 * Where a secret alyx holds could still be read by a function: a function runs as alyx's
 * user, so what alyx can read of another process, a function can read too.
 */

/** A process that started alyx (its parent, or theirs) and shows the secret in /proc. */
export interface ExposingAncestor {
  readonly pid: number;
  readonly name: string;
}

/** Longer than any real process tree: a guard against a loop in what /proc says. */
const MAX_ANCESTORS = 64;
/** A shorter secret is looked for only as `NAME=value`: a few characters match anything. */
const MIN_BARE_SECRET = 8;

/**
 * alyx's ancestors whose environment or command line holds `secret` (as `name=secret`, or
 * bare when it is long enough to be told apart), as far as this process may read them.
 */
export function ancestorsShowing(name: string, secret: string): ExposingAncestor[] {
  const needles = [Buffer.from(`${name}=${secret}`), ...(secret.length >= MIN_BARE_SECRET ? [Buffer.from(secret)] : [])];
  const found: ExposingAncestor[] = [];
  let pid = process.ppid;
  for (let step = 0; step < MAX_ANCESTORS && pid > 0; step++) {
    const shown = ['environ', 'cmdline'].some((file) => {
      const content = readProc(pid, file);
      return content !== null && needles.some((needle) => content.includes(needle));
    });
    if (shown) found.push({ pid, name: readProc(pid, 'comm')?.toString('utf8').trim() ?? '?' });
    if (pid === 1) break;
    pid = parentOf(pid);
  }
  return found;
}

/**
 * Whether processes of the same user are kept from reading another's memory by Yama
 * (ptrace_scope 1 or more: a function may not attach to alyx, an ancestor it did not start).
 */
export function ptraceRestricted(): boolean {
  const scope = readProc('sys', 'kernel/yama/ptrace_scope');
  return scope !== null && Number(scope.toString('utf8').trim()) >= 1;
}

function parentOf(pid: number): number {
  const stat = readProc(pid, 'stat')?.toString('utf8') ?? '';
  // Fields after the name in parentheses (which may hold spaces): state, then the parent's pid.
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] ?? 0) || 0;
}

function readProc(pid: number | 'sys', file: string): Buffer | null {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`);
  } catch {
    return null; // gone, or not readable by this user (nor by a function)
  }
}
