import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A file's content, or a file with a mode, or a symbolic link. */
export type FixtureEntry = string | { content: string; mode?: number } | { symlink: string };
export type FixtureTree = Record<string, FixtureEntry>;

/** Writes `tree` (paths relative to a fresh temporary folder) and returns the folder. */
export function makeProject(tree: FixtureTree = {}): string {
  const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'alyx-test-')));
  writeTree(root, tree);
  return root;
}

export function writeTree(root: string, tree: FixtureTree): void {
  for (const [relative, entry] of Object.entries(tree)) {
    const file = path.join(root, relative);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    if (typeof entry === 'string') fs.writeFileSync(file, entry);
    else if ('symlink' in entry) fs.symlinkSync(entry.symlink, file);
    else {
      fs.writeFileSync(file, entry.content);
      if (entry.mode !== undefined) fs.chmodSync(file, entry.mode);
    }
  }
}

export function removeProject(root: string): void {
  fs.rmSync(root, { recursive: true, force: true });
}

/** An executable file entry. */
export function executable(content: string): FixtureEntry {
  return { content, mode: 0o755 };
}
