import fs from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { pathToFileURL } from 'node:url';
import type { AlyxConfig } from '../config/resolve';
import { readSettingsFile } from '../config/settings-file';
import { discoverFunctions } from './discovery';
import { planExecution, type ExecutionPlan } from './entrypoint';
import { ExecutableFinder, isExecutableFile } from './executables';
import { realInterpreter } from './interpreter-path';
import type { FunctionDef } from './types';

export interface RegisteredFunction {
  readonly def: FunctionDef;
  readonly plan: ExecutionPlan;
}

/** Everything one discovery pass found. Replaced whole on reload, never edited. */
export interface FunctionSnapshot {
  readonly functions: ReadonlyMap<string, RegisteredFunction>;
  /** The project's .env file, parsed; it feeds the functions' environment. */
  readonly dotenv: Readonly<Record<string, string>>;
}

let typeScriptLoader: string | null | undefined;

/** file: URL of the TypeScript loader alyx ships (tsx), resolved from alyx's own installation. */
export function findTypeScriptLoader(): string | null {
  if (typeScriptLoader === undefined) {
    try {
      typeScriptLoader = pathToFileURL(require.resolve('tsx')).href;
    } catch {
      typeScriptLoader = null;
    }
  }
  return typeScriptLoader;
}

/** Discovers the functions of `config` and plans what each runs in the config's mode. */
export function loadSnapshot(config: AlyxConfig, env: NodeJS.ProcessEnv = process.env): FunctionSnapshot {
  const finder = new ExecutableFinder(config.projectDir, env.PATH);
  const context = {
    mode: config.mode,
    projectDir: config.projectDir,
    runtimes: config.runtimes,
    findExecutable: (command: string, baseDir: string) => finder.find(command, baseDir),
    realInterpreter: (found: string, selfPathArgs: readonly string[] | undefined) => realInterpreter(found, selfPathArgs, config.projectDir),
    exists: (file: string) => fs.existsSync(file),
    isExecutable: isExecutableFile,
    typeScriptLoader: findTypeScriptLoader(),
  };
  const functions = new Map<string, RegisteredFunction>();
  for (const def of discoverFunctions(config.functions.path, env)) {
    functions.set(def.name, { def, plan: planExecution(def, context) });
  }
  return { functions, dotenv: readDotenv(config.projectDir) };
}

function readDotenv(projectDir: string): Record<string, string> {
  const read = readSettingsFile(path.join(projectDir, '.env'));
  if (!read.ok) return {};
  try {
    const parsed = parseEnv(read.text);
    return Object.fromEntries(Object.entries(parsed).filter((entry): entry is [string, string] => entry[1] !== undefined));
  } catch {
    return {};
  }
}

/** The functions being served. A reload swaps the snapshot in one step; running invocations keep theirs. */
export class FunctionRegistry {
  #snapshot: FunctionSnapshot;
  readonly #load: () => FunctionSnapshot;

  constructor(load: () => FunctionSnapshot) {
    this.#load = load;
    this.#snapshot = load();
  }

  get snapshot(): FunctionSnapshot {
    return this.#snapshot;
  }

  get(name: string): RegisteredFunction | undefined {
    return this.#snapshot.functions.get(name);
  }

  list(): RegisteredFunction[] {
    return [...this.#snapshot.functions.values()];
  }

  /** Re-discovers the functions; returns the previous snapshot so callers can report changes. */
  reload(): FunctionSnapshot {
    const previous = this.#snapshot;
    this.#snapshot = this.#load();
    return previous;
  }
}

export interface SnapshotChanges {
  readonly added: string[];
  readonly removed: string[];
  readonly changed: string[];
}

/** Which functions a reload added, removed or changed (definition or what runs). */
export function diffSnapshots(previous: FunctionSnapshot, next: FunctionSnapshot): SnapshotChanges {
  const added: string[] = [];
  const changed: string[] = [];
  for (const [name, fn] of next.functions) {
    const before = previous.functions.get(name);
    if (!before) added.push(name);
    else if (JSON.stringify(before) !== JSON.stringify(fn)) changed.push(name);
  }
  const removed = [...previous.functions.keys()].filter((name) => !next.functions.has(name));
  return { added, removed, changed };
}
