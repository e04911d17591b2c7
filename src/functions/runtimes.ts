import type { RuntimeName } from '../config/resolve';

/** How one interpreter runs a function. Runtimes are rows in this table, not branches elsewhere. */
export interface RuntimeSpec {
  readonly command: string;
  readonly args: readonly string[];
  /** What follows the args: the entry file, or the function folder (`go run .`). */
  readonly target: 'entry' | 'folder';
  /** Entry files tried, in order, when a manifest names this runtime but no entry. */
  readonly entryFiles: readonly string[];
  /** Build outputs with these extensions run through this interpreter in production. */
  readonly outputExtensions: readonly string[];
  /** An interpreter inside the function folder that wins over the one on PATH. */
  readonly localInterpreter?: string;
  /** Entry extensions that need alyx's TypeScript loader. */
  readonly typeScriptExtensions?: readonly string[];
  readonly installHint: string;
  /** Arguments that make the interpreter print its own executable's path (to see through shims). */
  readonly selfPathArgs?: readonly string[];
}

const JS_OUTPUT = ['.js', '.mjs', '.cjs'];

export const RUNTIME_TABLE: Readonly<Record<RuntimeName, RuntimeSpec>> = {
  node: {
    command: 'node',
    args: [],
    target: 'entry',
    entryFiles: ['index.js', 'index.mjs', 'index.cjs', 'index.ts', 'index.mts', 'index.cts', 'mod.ts', 'main.ts'],
    outputExtensions: JS_OUTPUT,
    typeScriptExtensions: ['.ts', '.mts', '.cts'],
    installHint: 'install Node.js (https://nodejs.org) or add it to PATH',
    selfPathArgs: ['-p', 'process.execPath'],
  },
  deno: {
    command: 'deno',
    args: ['run', '--allow-all'],
    target: 'entry',
    entryFiles: ['mod.ts', 'main.ts', 'index.ts', 'index.tsx', 'index.js', 'index.mjs'],
    outputExtensions: JS_OUTPUT,
    installHint: "install deno or add it to the project's devDependencies (npm install --save-dev deno)",
    selfPathArgs: ['eval', 'console.log(Deno.execPath())'],
  },
  bun: {
    command: 'bun',
    args: ['run'],
    target: 'entry',
    entryFiles: ['index.tsx', 'index.ts', 'index.js', 'index.mjs', 'index.cjs', 'mod.ts', 'main.ts'],
    outputExtensions: JS_OUTPUT,
    installHint: "install bun or add it to the project's devDependencies (npm install --save-dev bun)",
    selfPathArgs: ['-e', 'console.log(process.execPath)'],
  },
  python: {
    command: 'python3',
    args: [],
    target: 'entry',
    entryFiles: ['index.py', 'main.py'],
    outputExtensions: ['.py'],
    localInterpreter: '.venv/bin/python',
    installHint: 'install Python 3 (python3 on PATH), or set runtimes.python.command in alyx.yaml',
    selfPathArgs: ['-c', 'import sys; print(sys.executable)'],
  },
  go: {
    command: 'go',
    args: ['run'],
    target: 'folder',
    entryFiles: ['main.go', 'index.go'],
    outputExtensions: [],
    installHint: 'install Go (apt-get install golang-go, or https://go.dev/dl) so that go is on PATH',
  },
};
