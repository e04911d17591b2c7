import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { isExecutableFile } from './executables';

/** How long discovery waits for an interpreter to name its own executable. */
const PROBE_TIMEOUT_MS = 5000;

/** Magic numbers of native executables (ELF, Mach-O both byte orders and fat): nothing to resolve. */
const NATIVE_MAGIC = [0x7f454c46, 0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe, 0xcafebabe];

/** Resolved interpreters, per program found on PATH and project folder, for the life of alyx. */
const resolved = new Map<string, string>();

/**
 * The real executable behind `found`, an interpreter found on PATH. Version managers (pyenv,
 * asdf, volta) put shell-script shims there that cost several times the interpreter's own
 * start-up on every invocation. A native executable is kept as it is (so `.venv/bin/python`
 * stays the venv's); a script is run once with `selfPathArgs`, which make the interpreter
 * print its own path. Anything unexpected (timeout, failure, no such file) keeps `found`.
 * The probe runs in the project folder, where version files such as .python-version apply.
 */
export function realInterpreter(
  found: string,
  selfPathArgs: readonly string[] | undefined,
  projectDir: string,
  timeoutMs = PROBE_TIMEOUT_MS,
): string {
  if (!selfPathArgs || isNativeExecutable(found)) return found;
  const key = `${found}\0${projectDir}`;
  let real = resolved.get(key);
  if (real === undefined) {
    real = probe(found, selfPathArgs, projectDir, timeoutMs) ?? found;
    resolved.set(key, real);
  }
  return real;
}

function probe(found: string, selfPathArgs: readonly string[], cwd: string, timeoutMs: number): string | null {
  const result = spawnSync(found, selfPathArgs, { cwd, encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'ignore'] });
  if (result.status !== 0 || typeof result.stdout !== 'string') return null;
  const printed = result.stdout.trim().split('\n').pop()?.trim() ?? '';
  return path.isAbsolute(printed) && isExecutableFile(printed) ? printed : null;
}

function isNativeExecutable(file: string): boolean {
  let descriptor: number | undefined;
  try {
    descriptor = fs.openSync(file, 'r');
    const head = Buffer.alloc(4);
    if (fs.readSync(descriptor, head, 0, 4, 0) < 4) return false;
    return NATIVE_MAGIC.includes(head.readUInt32BE(0));
  } catch {
    return false;
  } finally {
    if (descriptor !== undefined) fs.closeSync(descriptor);
  }
}
