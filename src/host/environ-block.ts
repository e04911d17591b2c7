import fs from 'node:fs';

/**
 * /proc/<pid>/environ is not process.env: it is the block of `NAME=value` strings the kernel
 * put on the stack at exec, and deleting a variable from process.env only drops libc's
 * pointer to its string there. Any process of the same user can read that block, so a secret
 * that arrived in the environment stays readable for as long as alyx runs, unless the bytes
 * themselves are overwritten. A process may write its own memory through /proc/self/mem.
 */

/** Fields 50 and 51 of /proc/<pid>/stat (Linux 3.5 and later): where the block starts and ends. */
const ENV_START_FIELD = 50;
const ENV_END_FIELD = 51;

/**
 * Removes `names` from process.env and overwrites their entries in this process's original
 * environment block with NUL bytes. Returns whether /proc/self/environ now holds none of
 * them (also when it never did); false where that cannot be done (not Linux, /proc/self/mem
 * not writable).
 */
export function eraseFromEnviron(names: readonly string[]): boolean {
  for (const name of names) delete process.env[name];
  if (process.platform !== 'linux') return false;
  try {
    const prefixes = names.map((name) => Buffer.from(`${name}=`));
    if (!holdsAny(fs.readFileSync('/proc/self/environ'), prefixes)) return true;
    const [start, end] = environBlock();
    const fd = fs.openSync('/proc/self/mem', 'r+');
    try {
      const block = Buffer.alloc(end - start);
      fs.readSync(fd, block, 0, block.length, start);
      for (const [from, to] of entries(block)) {
        if (!prefixes.some((prefix) => startsWith(block, from, prefix))) continue;
        // The address is below 2^53 on every 64-bit Linux: a Number position is exact.
        fs.writeSync(fd, Buffer.alloc(to - from), 0, to - from, start + from);
      }
    } finally {
      fs.closeSync(fd);
    }
    return !holdsAny(fs.readFileSync('/proc/self/environ'), prefixes);
  } catch {
    return false;
  }
}

function environBlock(): [number, number] {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  // The name in parentheses may hold spaces; the fields after it start with field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).trim().split(' ');
  const start = Number(fields[ENV_START_FIELD - 3]);
  const end = Number(fields[ENV_END_FIELD - 3]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end <= start) throw new Error('no environment block in /proc/self/stat');
  return [start, end];
}

/** [start, end) of each NUL-terminated entry of the block. */
function* entries(block: Buffer): Generator<[number, number]> {
  let from = 0;
  while (from < block.length) {
    const nul = block.indexOf(0, from);
    const to = nul === -1 ? block.length : nul;
    if (to > from) yield [from, to];
    from = to + 1;
  }
}

function startsWith(block: Buffer, at: number, prefix: Buffer): boolean {
  return block.length - at >= prefix.length && block.compare(prefix, 0, prefix.length, at, at + prefix.length) === 0;
}

function holdsAny(environ: Buffer, prefixes: readonly Buffer[]): boolean {
  for (const [from] of entries(environ)) if (prefixes.some((prefix) => startsWith(environ, from, prefix))) return true;
  return false;
}
