/**
 * Run after the TypeScript build (`npm run build`): compiles posix-spawn.c into the addon that
 * starts function processes without forking (see native-process.ts), where a C compiler and
 * node's headers are. Without them alyx starts processes with child_process.spawn, and this
 * says so; it never fails the build.
 *
 *   node dist/functions/native/build.js
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const SOURCE = path.resolve(__dirname, '..', '..', '..', 'src', 'functions', 'native', 'posix-spawn.c');
export const ADDON_FILE = path.resolve(__dirname, '..', '..', '..', 'dist', 'functions', 'native', 'posix-spawn.node');

/** Where node_api.h is: beside node's own bin folder (official builds), or the system's. */
export function nodeHeaders(): string | null {
  const candidates = [path.resolve(process.execPath, '..', '..', 'include', 'node'), '/usr/include/node'];
  return candidates.find((dir) => fs.existsSync(path.join(dir, 'node_api.h'))) ?? null;
}

/** Builds the addon (into `output`); returns why it was not built, or null when it was. */
export function buildAddon(output = ADDON_FILE): string | null {
  if (process.platform !== 'linux') return `posix_spawn is used on Linux only (this is ${process.platform})`;
  // An addon from an earlier build goes, whether or not this one can replace it.
  fs.rmSync(output, { force: true });
  const headers = nodeHeaders();
  if (!headers) return "node's headers (node_api.h) were not found beside node or in /usr/include/node";
  const compiled = spawnSync('cc', ['-O2', '-Wall', '-shared', '-fPIC', `-I${headers}`, '-o', output, SOURCE], { encoding: 'utf8' });
  if (compiled.error) return `no C compiler (cc: ${(compiled.error as NodeJS.ErrnoException).code})`;
  if (compiled.status !== 0) return `cc failed: ${compiled.stderr.trim().split('\n').slice(-3).join(' ')}`;
  return null;
}

if (require.main === module) {
  const why = buildAddon();
  if (why) console.log(`alyx: function processes will start with child_process.spawn: ${why}.`);
}
