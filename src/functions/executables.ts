import fs from 'node:fs';
import path from 'node:path';

/** True when `file` is a regular file this process may execute. */
export function isExecutableFile(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) return false;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds interpreters and build tools: the project's node_modules/.bin first (like npx, so a
 * project can pin its own deno or bun), then PATH. Results are cached for the lifetime of the
 * finder, which is one discovery pass.
 */
export class ExecutableFinder {
  readonly #searchDirs: string[];
  readonly #cache = new Map<string, string | null>();

  constructor(projectDir: string, pathVariable: string | undefined = process.env.PATH) {
    this.#searchDirs = [
      path.join(projectDir, 'node_modules', '.bin'),
      ...(pathVariable ?? '').split(path.delimiter).filter(Boolean),
    ];
  }

  /** Absolute path of `command`, or null. A command with a slash is taken relative to `baseDir`. */
  find(command: string, baseDir: string): string | null {
    if (command.includes('/')) {
      const file = path.resolve(baseDir, command);
      return isExecutableFile(file) ? file : null;
    }
    let found = this.#cache.get(command);
    if (found === undefined) {
      found = this.#searchDirs.map((dir) => path.join(dir, command)).find(isExecutableFile) ?? null;
      this.#cache.set(command, found);
    }
    return found;
  }
}
