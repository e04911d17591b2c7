import fs from 'node:fs';

/** Whether a process is alive: it exists and is not a zombie waiting to be reaped. */
export function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Polls until `check` holds or the deadline passes; returns whether it held. */
export async function waitFor(check: () => boolean, timeoutMs = 5000, intervalMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Reads a pid a fixture function wrote to a file, waiting for it to appear. */
export async function readPidFile(file: string, timeoutMs = 5000): Promise<number> {
  const appeared = await waitFor(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8').trim() !== '', timeoutMs);
  if (!appeared) throw new Error(`no pid was written to ${file}`);
  return Number(fs.readFileSync(file, 'utf8').trim());
}

/**
 * Pids of live processes whose environment holds every `KEY=value` of `entries`. A test gives
 * its functions a unique variable, so this finds them wherever they went (other groups, other parents).
 */
export function processesWithEnv(...entries: string[]): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let environ: string[];
    try {
      environ = fs.readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
    } catch {
      continue; // gone while we looked, or not ours to read
    }
    if (entries.every((wanted) => environ.includes(wanted)) && isAlive(Number(entry))) found.push(Number(entry));
  }
  return found;
}

/** Pids of live processes whose command line holds `args` as consecutive arguments. */
export function processesWithArgs(...args: string[]): number[] {
  const wanted = `\0${args.join('\0')}\0`;
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = `\0${fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8')}`;
    } catch {
      continue;
    }
    if (cmdline.includes(wanted) && isAlive(Number(entry))) found.push(Number(entry));
  }
  return found;
}
