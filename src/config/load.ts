import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors';
import { ANY_OTHER_KEY, ignoredKeyPaths, schemaAt, validateAgainst } from './schemas';
import { readYamlMapping } from './yaml-file';

export const CONFIG_FILE_NAMES = ['alyx.yaml', 'alyx.yml'];

export interface LoadedConfigFile {
  /** Absolute path of the file read, or null when the project has none. */
  file: string | null;
  /** The file's values, validated, without the ignored keys. */
  values: Record<string, unknown>;
  /** Dotted paths of keys the earlier Alyx server defined that alyx ignores. */
  ignored: string[];
}

/**
 * Reads and validates alyx.yaml. `explicitFile` (from --config) must exist; otherwise the
 * project's alyx.yaml is optional. Problems throw a ConfigError naming the file and key paths.
 */
export function loadConfigFile(projectDir: string, explicitFile?: string): LoadedConfigFile {
  const file = explicitFile
    ? path.resolve(projectDir, explicitFile)
    : CONFIG_FILE_NAMES.map((name) => path.join(projectDir, name)).find((candidate) => fs.existsSync(candidate));
  if (!file) return { file: null, values: {}, ignored: [] };
  if (explicitFile && !fs.existsSync(file)) {
    throw new ConfigError(`${file}: no such file (given with --config). Check the path, or leave --config out to use ./alyx.yaml.`);
  }
  const read = readYamlMapping(file);
  if (!read.ok) throw new ConfigError(`${file} ${read.problem}`);

  const values = read.data;
  const ignored = removeIgnoredKeys(values);
  renameLegacyFunctionsDir(values);
  const problems = validateAgainst('alyx', values);
  if (problems.length > 0) {
    throw new ConfigError(`${file} is not a valid alyx configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
  return { file, values, ignored };
}

/** Deletes the keys alyx accepts but ignores, returning their dotted paths. */
function removeIgnoredKeys(values: Record<string, unknown>): string[] {
  const removed: string[] = [];
  for (const keyPath of ignoredKeyPaths('alyx')) {
    const parentPath = keyPath.slice(0, -1);
    const parent = parentPath.reduce<unknown>((node, key) => (isMapping(node) ? node[key] : undefined), values);
    if (!isMapping(parent)) continue;
    const last = keyPath[keyPath.length - 1];
    const named = Object.keys((schemaAt('alyx', parentPath)?.properties as Record<string, unknown> | undefined) ?? {});
    const keys = last === ANY_OTHER_KEY ? Object.keys(parent).filter((key) => !named.includes(key)) : [last].filter((key) => key in parent);
    for (const key of keys) {
      delete parent[key];
      removed.push([...parentPath, key].join('.'));
    }
  }
  return removed;
}

/** The earlier server's examples call functions.path "functions.dir". */
function renameLegacyFunctionsDir(values: Record<string, unknown>): void {
  const functions = values.functions;
  if (!isMapping(functions) || !('dir' in functions)) return;
  if (!('path' in functions)) functions.path = functions.dir;
  delete functions.dir;
}

export function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
