import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import picomatch from 'picomatch';
import { isInside, isSkippedFolder } from '../functions/discovery';
import type { FunctionDef } from '../functions/types';

/** Folders never watched: tools' trees, large and irrelevant. */
const IGNORED_SEGMENTS = new Set(['node_modules', '.git', '.venv', '__pycache__']);
/** Files whose change can change what a function is (its runtime, entry or settings). */
const DEFINITION_FILES = new Set(['manifest.yaml', 'manifest.yml', 'deno.json', 'deno.jsonc']);

export interface WatcherOptions {
  readonly projectDir: string;
  readonly functionsPath: string;
  /** Files of the project folder whose change means "re-discover" (its .env). */
  readonly projectFiles: readonly string[];
  readonly lookup: (name: string) => FunctionDef | undefined;
  /** The set of functions changed: re-discover (debounced by the caller's own timer). */
  readonly onStructureChange: () => void;
  /** A file matching the function's build.watch changed. */
  readonly onBuildInput: (name: string) => void;
  /** Any file of the function changed, was added or removed. */
  readonly onFunctionChange?: (name: string) => void;
  readonly onError: (error: unknown) => void;
}

type WatchEvent = 'add' | 'addDir' | 'change' | 'unlink' | 'unlinkDir';

/**
 * Watches the functions folder. Files added or removed, and manifests changed, re-discover;
 * files matching a function's build.watch (never its build output) start its build.
 */
export class FunctionWatcher {
  readonly #options: WatcherOptions;
  readonly #matchers = new Map<string, { globs: string; match: (file: string) => boolean }>();
  #watcher: FSWatcher | null = null;

  constructor(options: WatcherOptions) {
    this.#options = options;
  }

  /** Resolves once the initial scan is done: changes from then on are reported. */
  start(): Promise<void> {
    const { projectDir, functionsPath } = this.#options;
    // Only existing folders are handed to chokidar (a missing path among them makes it miss
    // every event); the filter narrows the project folder to what matters.
    const roots = isInside(projectDir, functionsPath) ? [projectDir] : [projectDir, functionsPath];
    const watcher = watch(roots, {
      ignoreInitial: true,
      ignored: (file: string) => this.#ignored(file),
    });
    this.#watcher = watcher;
    for (const event of ['add', 'addDir', 'change', 'unlink', 'unlinkDir'] as const) {
      watcher.on(event, (file: string) => this.#handle(event, file));
    }
    watcher.on('error', (error: unknown) => this.#options.onError(error));
    return new Promise((resolve) => watcher.once('ready', () => resolve()));
  }

  async close(): Promise<void> {
    await this.#watcher?.close();
    this.#watcher = null;
  }

  #ignored(file: string): boolean {
    const { projectDir, functionsPath, projectFiles } = this.#options;
    if (!isInside(functionsPath, file)) {
      // Outside the functions folder only the project folder, its watched files and the
      // folders leading to the functions folder are looked at.
      return !(file === projectDir || projectFiles.includes(file) || isInside(file, functionsPath));
    }
    const relative = path.relative(functionsPath, file);
    if (relative === '') return false;
    const segments = relative.split(path.sep);
    return isSkippedFolder(segments[0]) || segments.some((segment) => IGNORED_SEGMENTS.has(segment));
  }

  #handle(event: WatchEvent, file: string): void {
    const relative = path.relative(this.#options.functionsPath, file);
    if (!isInside(this.#options.functionsPath, file) || relative === '') {
      this.#options.onStructureChange(); // .env, or the functions folder itself
      return;
    }
    const [name, ...rest] = relative.split(path.sep);
    const inFunction = rest.join('/');
    this.#options.onFunctionChange?.(name);
    if (event !== 'change' || DEFINITION_FILES.has(inFunction)) this.#options.onStructureChange();
    if ((event === 'add' || event === 'change') && inFunction !== '' && this.#isBuildInput(name, inFunction)) {
      this.#options.onBuildInput(name);
    }
  }

  /** Whether a file (relative to the function folder) is one of the function's build inputs. */
  #isBuildInput(name: string, file: string): boolean {
    const fn = this.#options.lookup(name);
    const build = fn?.build;
    if (!fn || !build?.command) return false;
    const output = path.relative(fn.dir, build.output).split(path.sep).join('/');
    if (file === output) return false;
    return this.#matcherFor(fn, output)(file);
  }

  #matcherFor(fn: FunctionDef, output: string): (file: string) => boolean {
    const globs = JSON.stringify([fn.build?.watch, output]);
    const cached = this.#matchers.get(fn.name);
    if (cached?.globs === globs) return cached.match;
    const match = fn.build?.watch ? picomatch(fn.build.watch as string[], { dot: true }) : defaultBuildInputs(output);
    this.#matchers.set(fn.name, { globs, match });
    return match;
  }
}

/**
 * Without build.watch every file is an input except the output and, when the output sits in a
 * folder of its own (dist/, bin/), that folder: what a build writes must not start another.
 */
function defaultBuildInputs(output: string): (file: string) => boolean {
  const outputFolder = output.includes('/') ? `${output.split('/')[0]}/` : null;
  return (file) => file !== output && (outputFolder === null || !file.startsWith(outputFolder));
}
