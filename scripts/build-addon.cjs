'use strict';
/**
 * Run after the TypeScript build (`npm run build`): compiles native/posix-spawn.c into the addon
 * that starts function processes without forking (see src/process/native-process.ts), where a
 * C compiler and node's headers are. Without them alyx starts processes with
 * child_process.spawn, and this says so; it never fails the build.
 *
 *   node scripts/build-addon.cjs [OUTPUT]
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const SOURCE = path.resolve(__dirname, '..', 'native', 'posix-spawn.c');
/** Where src/process/addon.ts loads it from. */
const ADDON_FILE = path.resolve(__dirname, '..', 'dist', 'native', 'posix-spawn.node');

/** Where node_api.h is: beside node's own bin folder (official builds), or the system's. */
function nodeHeaders() {
  const candidates = [path.resolve(process.execPath, '..', '..', 'include', 'node'), '/usr/include/node'];
  return candidates.find((dir) => fs.existsSync(path.join(dir, 'node_api.h'))) ?? null;
}

/** Builds the addon into `output`; returns why it was not built, or null when it was. */
function buildAddon(output = ADDON_FILE) {
  if (process.platform !== 'linux') return `posix_spawn is used on Linux only (this is ${process.platform})`;
  // An addon from an earlier build goes, whether or not this one can replace it.
  fs.rmSync(output, { force: true });
  const headers = nodeHeaders();
  if (!headers) return "node's headers (node_api.h) were not found beside node or in /usr/include/node";
  fs.mkdirSync(path.dirname(output), { recursive: true });
  const compiled = spawnSync('cc', ['-O2', '-Wall', '-shared', '-fPIC', `-I${headers}`, '-o', output, SOURCE], { encoding: 'utf8' });
  if (compiled.error) return `no C compiler (cc: ${compiled.error.code})`;
  if (compiled.status !== 0) return `cc failed: ${compiled.stderr.trim().split('\n').slice(-3).join(' ')}`;
  return null;
}

module.exports = { ADDON_FILE, buildAddon, nodeHeaders };

if (require.main === module) {
  const why = buildAddon(process.argv[2]);
  if (why) console.log(`alyx: function processes will start with child_process.spawn: ${why}.`);
}
