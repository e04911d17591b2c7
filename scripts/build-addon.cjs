'use strict';
/**
 * Builds the addon that starts function processes without forking (native/posix-spawn.c; see
 * src/process/native-process.ts) with node-gyp, from binding.gyp, into build/Release, where a C
 * compiler is. With `--prebuild` it makes the prebuilt copy that ships in the package instead
 * (prebuildify, into prebuilds/<platform>-<arch>/). Without a compiler alyx starts processes
 * with child_process.spawn, and this says so in one line; it never fails the build.
 *
 *   node scripts/build-addon.cjs [--prebuild | --install]
 *
 * `--install` (npm's install script) builds only where no prebuilt addon loads.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');

/**
 * Where node's headers are: beside node's own binary (official builds) or the system's. node-gyp
 * is pointed there, so it needs no download.
 */
function nodeHeadersDir() {
  const candidates = [path.resolve(process.execPath, '..', '..'), '/usr'];
  return candidates.find((dir) => fs.existsSync(path.join(dir, 'include', 'node', 'node_api.h'))) ?? null;
}

/** The node-gyp or prebuildify of alyx's dev dependencies, or npm's own node-gyp while npm runs a script. */
function tool(name) {
  try {
    return [process.execPath, require.resolve(name === 'node-gyp' ? 'node-gyp/bin/node-gyp.js' : 'prebuildify/bin.js', { paths: [ROOT] })];
  } catch {
    return name === 'node-gyp' ? ['node-gyp'] : null;
  }
}

/** Builds the addon; returns why it was not built, or null when it was. */
function buildAddon({ prebuild = false } = {}) {
  if (process.platform !== 'linux') return `posix_spawn is used on Linux only (this is ${process.platform})`;
  const headers = nodeHeadersDir();
  if (!headers) return "node's headers (include/node/node_api.h) were not found beside node or in /usr";
  const command = prebuild ? tool('prebuildify') : tool('node-gyp');
  if (!command) return 'prebuildify is not installed (it is a dev dependency)';
  const args = prebuild ? ['--napi', '--strip', '--tag-libc'] : ['rebuild'];
  const built = spawnSync(command[0], [...command.slice(1), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, npm_config_nodedir: headers },
  });
  if (built.error) return `${command.join(' ')} could not run (${built.error.code})`;
  if (built.status !== 0) {
    const output = `${built.stdout}\n${built.stderr}`;
    if (/\bnot found\b|ENOENT|No such file/.test(output) && /\b(cc|c\+\+|gcc|g\+\+|make)\b/.test(output)) return 'no C compiler (cc, c++ and make are needed)';
    return `node-gyp failed: ${output.trim().split('\n').slice(-3).join(' ')}`;
  }
  return null;
}

module.exports = { buildAddon, nodeHeadersDir };

/** At `npm install`: nothing to do where a prebuilt addon loads on this machine. */
function prebuiltLoads() {
  try {
    require('node-gyp-build')(ROOT);
    return true;
  } catch {
    return false;
  }
}

if (require.main === module) {
  if (process.argv.includes('--install') && prebuiltLoads()) process.exit(0);
  const why = buildAddon({ prebuild: process.argv.includes('--prebuild') });
  if (why) console.log(`alyx: function processes will start with child_process.spawn: ${why}.`);
}
