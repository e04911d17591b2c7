import fs from 'node:fs';
import path from 'node:path';
import type { RuntimeName } from '../config/resolve';
import { expandEnvMap } from '../config/expand-env';
import { parseDuration, parseMegabytes } from '../config/units';
import { readManifest, type Manifest } from './manifest';
import { RUNTIME_TABLE } from './runtimes';
import { parseIngress } from './routes';
import { parseSchedules } from './schedules';
import type { BuildConfig, FunctionDef, Runtime } from './types';

export const FUNCTION_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** What FUNCTION_NAME_PATTERN asks for, in words. */
export const FUNCTION_NAME_RULE = 'use letters, digits, "-" and "_" (at most 64, starting with a letter or digit)';

/** SPEC §3: the entry-file table; the first file present wins. */
const ENTRY_TABLE: ReadonlyArray<{ file: string; runtime: (dir: string) => RuntimeName }> = [
  ...['mod.ts', 'main.ts'].map((file) => ({ file, runtime: denoIfConfigured })),
  ...['index.js', 'index.mjs', 'index.cjs', 'index.ts', 'index.mts', 'index.cts'].map((file) => ({
    file,
    runtime: (): RuntimeName => 'node',
  })),
  { file: 'index.tsx', runtime: () => 'bun' },
  { file: 'index.py', runtime: () => 'python' },
  { file: 'main.go', runtime: () => 'go' },
  { file: 'index.go', runtime: () => 'go' },
];

function denoIfConfigured(dir: string): RuntimeName {
  return ['deno.json', 'deno.jsonc'].some((file) => fs.existsSync(path.join(dir, file))) ? 'deno' : 'node';
}

/** Folder names that are never functions. */
export function isSkippedFolder(name: string): boolean {
  return name.startsWith('.') || name.startsWith('_') || name === 'node_modules';
}

/**
 * Every direct sub-folder of `functionsPath` as a FunctionDef, sorted by name. Invalid
 * functions are included with their reason. A missing functions folder yields no functions.
 */
export function discoverFunctions(functionsPath: string, env: NodeJS.ProcessEnv = process.env): FunctionDef[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(functionsPath, { withFileTypes: true });
  } catch {
    return [];
  }
  const rootReal = safeRealpath(functionsPath) ?? functionsPath;
  return entries
    .filter((entry) => !isSkippedFolder(entry.name) && isDirectory(path.join(functionsPath, entry.name)))
    .map((entry) => loadFunction(path.join(functionsPath, entry.name), rootReal, env))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Reads one function folder. Never throws: problems make the function invalid. */
export function loadFunction(dir: string, functionsRealPath: string, env: NodeJS.ProcessEnv): FunctionDef {
  const name = path.basename(dir);
  const invalid = (reason: string, manifestFile: string | null = null): FunctionDef => ({
    ...emptyDef(name, dir, manifestFile),
    invalid: reason,
  });

  if (!FUNCTION_NAME_PATTERN.test(name)) {
    return invalid(`the folder name "${name}" is not a valid function name: ${FUNCTION_NAME_RULE}`);
  }
  if (!isInside(functionsRealPath, safeRealpath(dir) ?? dir)) {
    return invalid(`the folder is a symbolic link to a place outside the functions folder: move the function into ${functionsRealPath}`);
  }

  const read = readManifest(dir);
  if ('problem' in read) return invalid(read.problem, read.file);
  const manifest: Manifest = 'manifest' in read ? read.manifest : {};
  const manifestFile = read.file;
  if (manifest.name !== undefined && manifest.name !== name) {
    return invalid(`manifest name "${manifest.name}" must equal the folder name "${name}" (or be left out)`, manifestFile);
  }
  const schedules = parseSchedules(manifest.schedules);
  if (!schedules.ok) return invalid(`${path.basename(manifestFile ?? 'manifest.yaml')}: ${schedules.problems.join('; ')}`, manifestFile);
  const ingress = parseIngress(manifest.routes, manifest.hooks, env);
  if (!ingress.ok) return invalid(`${path.basename(manifestFile ?? 'manifest.yaml')}: ${ingress.problem}`, manifestFile);

  let build: BuildConfig | null = null;
  if (manifest.build) {
    const output = resolveInside(dir, manifest.build.output);
    if (typeof output !== 'string') return invalid(`build.output ${output.problem}`, manifestFile);
    build = {
      command: manifest.build.command ?? null,
      args: manifest.build.args ?? [],
      watch: manifest.build.watch ?? null,
      output,
    };
  }

  const found = findEntry(dir, manifest);
  if ('problem' in found) return invalid(found.problem, manifestFile);
  if (found.entry !== null) {
    const contained = resolveInside(dir, path.relative(dir, found.entry));
    if (typeof contained !== 'string') return invalid(`entry ${contained.problem}`, manifestFile);
  }

  return {
    ...emptyDef(name, dir, manifestFile),
    runtime: found.runtime,
    entry: found.entry,
    description: manifest.description ?? null,
    timeoutMs: manifest.timeout === undefined ? null : (parseDuration(manifest.timeout) ?? null),
    memoryBytes: manifest.memory === undefined ? null : (parseMegabytes(manifest.memory) ?? null),
    concurrency: manifest.concurrency ?? null,
    pool: manifest.pool ?? null,
    reuse: manifest.reuse === true,
    env: expandEnvMap(manifest.env, env),
    build,
    schedules: schedules.schedules,
    retries: manifest.retries ?? null,
    routes: ingress.routes,
    webhooks: ingress.webhooks,
    auth: manifest.auth ?? 'optional',
    ignoredHooks: ingress.ignoredHooks,
  };
}

type EntryResult = { runtime: Runtime; entry: string | null } | { problem: string };

function findEntry(dir: string, manifest: Manifest): EntryResult {
  if (manifest.runtime === 'binary') {
    if (!manifest.build) {
      return { problem: 'runtime binary needs build.output: the path of the executable to run' };
    }
    return { runtime: 'binary', entry: null };
  }
  if (manifest.entry !== undefined) {
    const entry = resolveInside(dir, manifest.entry);
    if (typeof entry !== 'string') return { problem: `entry ${entry.problem}` };
    if (!isFile(entry)) return { problem: `entry "${manifest.entry}" does not exist: create it or fix entry in the manifest` };
    return { runtime: manifest.runtime ?? runtimeForFile(dir, entry), entry };
  }
  if (manifest.runtime) {
    const file = RUNTIME_TABLE[manifest.runtime].entryFiles.find((candidate) => isFile(path.join(dir, candidate)));
    if (!file) {
      return {
        problem: `no entry file for runtime ${manifest.runtime}: add one of ${RUNTIME_TABLE[manifest.runtime].entryFiles.join(', ')}, or set entry in the manifest`,
      };
    }
    return { runtime: manifest.runtime, entry: path.join(dir, file) };
  }
  const row = ENTRY_TABLE.find((candidate) => isFile(path.join(dir, candidate.file)));
  if (!row) {
    return {
      problem: `no entry file: add one of ${ENTRY_TABLE.map((r) => r.file).join(', ')}, or a manifest.yaml with entry or runtime`,
    };
  }
  return { runtime: row.runtime(dir), entry: path.join(dir, row.file) };
}

/** The runtime for an entry named in a manifest without a runtime: by its extension. */
function runtimeForFile(dir: string, file: string): RuntimeName {
  const extension = path.extname(file);
  if (extension === '.py') return 'python';
  if (extension === '.go') return 'go';
  if (extension === '.tsx') return 'bun';
  if (extension === '.ts' && ['mod.ts', 'main.ts'].includes(path.basename(file))) return denoIfConfigured(dir);
  return 'node';
}

/**
 * Resolves `relative` against the function folder and checks that it stays inside, both by
 * its path and after following symbolic links (of the file, or of its nearest existing parent).
 */
export function resolveInside(dir: string, relative: string): string | { problem: string } {
  const resolved = path.resolve(dir, relative);
  if (!isInside(dir, resolved)) return { problem: `"${relative}" must stay inside the function folder` };
  if (!isInside(safeRealpath(dir) ?? dir, realpathAllowingMissing(resolved))) {
    return { problem: `"${relative}" leads outside the function folder through a symbolic link` };
  }
  return resolved;
}

/**
 * Like realpath, for paths that may not exist yet: follows every symbolic link on the way,
 * dangling ones included (a link to a build output not built yet must not point outside).
 */
function realpathAllowingMissing(file: string, depth = 0): string {
  const real = safeRealpath(file);
  if (real) return real;
  let link: string | null = null;
  try {
    if (fs.lstatSync(file).isSymbolicLink()) link = fs.readlinkSync(file);
  } catch {
    // does not exist at all
  }
  if (link !== null && depth < 40) return realpathAllowingMissing(path.resolve(path.dirname(file), link), depth + 1);
  const parent = path.dirname(file);
  return parent === file ? file : path.join(realpathAllowingMissing(parent, depth), path.basename(file));
}

export function isInside(parent: string, child: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative));
}

function emptyDef(name: string, dir: string, manifestFile: string | null): FunctionDef {
  return {
    name, dir, runtime: null, entry: null, manifestFile, description: null, timeoutMs: null,
    memoryBytes: null, concurrency: null, pool: null, reuse: false, env: {}, build: null, schedules: [], retries: null,
    routes: [], webhooks: [], auth: 'optional', ignoredHooks: [],
    invalid: null,
  };
}

function safeRealpath(file: string): string | null {
  try {
    return fs.realpathSync(file);
  } catch {
    return null;
  }
}

function isDirectory(file: string): boolean {
  try {
    return fs.statSync(file).isDirectory();
  } catch {
    return false;
  }
}

function isFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}
