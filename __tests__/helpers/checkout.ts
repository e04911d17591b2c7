import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './cli';

/**
 * The files a fresh clone would hold under `folder` (relative to the repository): those git
 * tracks and those it would add, never what .gitignore excludes. Paths are relative to the repository.
 */
export function checkoutFiles(folder = '.'): string[] {
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', folder], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  });
  if (listed.status !== 0) throw new Error(`git ls-files failed: these tests need a git checkout of alyx\n${listed.stderr}`);
  // A tracked file deleted in the working tree is not part of the next commit either.
  return listed.stdout.split('\0').filter((file) => file !== '' && fs.existsSync(path.join(REPO_ROOT, file)));
}

/** Copies what a fresh clone would hold under `folder` into `destination`, keeping file modes. */
export function copyCheckout(folder: string, destination: string): void {
  const base = path.join(REPO_ROOT, folder);
  for (const file of checkoutFiles(folder)) {
    const target = path.join(destination, path.relative(base, path.join(REPO_ROOT, file)));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(path.join(REPO_ROOT, file), target);
  }
}
