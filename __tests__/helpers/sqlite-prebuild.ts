import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './cli';
import { makeProject, removeProject } from './project';

let prebuilds: string | null | undefined;

/**
 * The environment that lets an `npm ci` or `npm install` in a test take better-sqlite3's
 * native driver from this checkout's build instead of compiling SQLite again (about 100 s on
 * 2 cores): prebuild-install, better-sqlite3's installer, looks in the folder that
 * `npm_config_better_sqlite3_local_prebuilds` names before it downloads or compiles. Empty where
 * this checkout has no built driver.
 */
export function sqlitePrebuildEnv(): NodeJS.ProcessEnv {
  if (prebuilds === undefined) prebuilds = packDriver();
  return prebuilds ? { npm_config_better_sqlite3_local_prebuilds: prebuilds } : {};
}

function packDriver(): string | null {
  const packageDir = path.join(REPO_ROOT, 'node_modules', 'better-sqlite3');
  const binary = path.join(packageDir, 'build', 'Release', 'better_sqlite3.node');
  if (!fs.existsSync(binary)) return null;
  const { version } = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8')) as { version: string };
  const dir = makeProject();
  process.once('exit', () => removeProject(dir));
  // prebuild-install's file name: {name}-v{version}-{runtime}-v{abi}-{platform}-{arch}.tar.gz
  const tarball = path.join(dir, `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`);
  const packed = spawnSync('tar', ['-czf', tarball, '-C', packageDir, 'build/Release/better_sqlite3.node']);
  return packed.status === 0 ? dir : null;
}
