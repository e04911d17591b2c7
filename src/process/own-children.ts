import { ChildProcess } from 'node:child_process';
import { isNativeChild } from './native-process';

/**
 * The processes alyx started itself and has not reaped yet. alyx, as a subreaper, also has
 * children it never started (orphans it adopted), and only those may it wait for: waiting for
 * a process that libuv started would take its exit status from node, whose 'exit' would then
 * never come.
 */
const startedByNode = new Set<number>();
let hooked = false;

/**
 * Notes every process started through child_process (functions on node's spawn, the watchdog,
 * builds, anything a library starts) until node has reaped it. Node has no list of its own
 * children to ask, so the one method they all go through is wrapped.
 */
export function noteNodeChildren(): void {
  if (hooked) return;
  hooked = true;
  // Not in node's type declarations, but every child_process start calls it.
  const prototype = ChildProcess.prototype as unknown as { spawn: (this: ChildProcess, ...args: unknown[]) => unknown };
  const original = prototype.spawn;
  prototype.spawn = function spawn(this: ChildProcess, ...args: unknown[]): unknown {
    const result = original.apply(this, args);
    const pid = this.pid;
    if (pid !== undefined) {
      startedByNode.add(pid);
      // 'exit' comes once libuv has reaped it: the pid may then be anyone's.
      this.once('exit', () => startedByNode.delete(pid));
    }
    return result;
  };
}

/** Whether alyx started `pid` itself (with posix_spawn or child_process) and it is not reaped yet. */
export function isOwnChild(pid: number): boolean {
  return startedByNode.has(pid) || isNativeChild(pid);
}
