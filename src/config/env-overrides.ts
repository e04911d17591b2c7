import { ConfigError } from '../errors';
import { schemaAt } from './schemas';
import { isMapping } from './load';

type Schema = Record<string, unknown>;

/** One configuration key that an ALYX_* variable can set. */
interface EnvKey {
  variable: string;
  keyPath: string[];
  schema: Schema;
}

const TRUE_WORDS = new Set(['true', '1', 'yes']);
const FALSE_WORDS = new Set(['false', '0', 'no']);

/** Reads true/false/1/0/yes/no in any case; undefined for anything else. */
export function parseBoolean(value: string): boolean | undefined {
  const word = value.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  return undefined;
}

let envKeys: EnvKey[] | undefined;

/** Every scalar key (and list of strings) of alyx.yaml, with its ALYX_ variable name. */
export function configEnvKeys(): EnvKey[] {
  if (envKeys) return envKeys;
  const keys: EnvKey[] = [];
  const walk = (keyPath: string[]): void => {
    const schema = schemaAt('alyx', keyPath);
    if (!schema || schema.deprecated) return;
    const properties = schema.properties as Schema | undefined;
    const namedChildren = (schema.propertyNames as { enum?: string[] } | undefined)?.enum;
    if (properties || namedChildren) {
      for (const key of Object.keys(properties ?? {})) if (key !== '$schema' && key !== 'dir') walk([...keyPath, key]);
      for (const key of namedChildren ?? []) walkDynamic([...keyPath, key], schema.additionalProperties as Schema);
      return;
    }
    if (isScalarOrList(schema)) keys.push({ variable: variableFor(keyPath), keyPath, schema });
  };
  // Children of a mapping whose keys are a fixed set (runtimes.python.command, ...).
  const walkDynamic = (keyPath: string[], schema: Schema): void => {
    for (const [key, child] of Object.entries((schema.properties as Record<string, Schema>) ?? {})) {
      const resolved = child.$ref ? { type: 'array', items: { type: 'string' } } : child;
      if (isScalarOrList(resolved)) keys.push({ variable: variableFor([...keyPath, key]), keyPath: [...keyPath, key], schema: resolved });
    }
  };
  walk([]);
  envKeys = keys;
  return keys;
}

function variableFor(keyPath: string[]): string {
  return `ALYX_${keyPath.join('_').toUpperCase()}`;
}

function typesOf(schema: Schema): string[] {
  if (Array.isArray(schema.enum)) return ['string'];
  return ([] as string[]).concat((schema.type as string | string[] | undefined) ?? []);
}

function isScalarOrList(schema: Schema): boolean {
  const types = typesOf(schema);
  if (types.includes('array')) return (schema.items as Schema | undefined)?.type === 'string';
  return types.length > 0 && !types.includes('object');
}

/** Turns a variable's text into the value the schema expects; validation reports the rest. */
function coerce(key: EnvKey, raw: string): unknown {
  const types = typesOf(key.schema);
  if (types.includes('boolean')) {
    const value = parseBoolean(raw);
    if (value === undefined) {
      throw new ConfigError(`${key.variable}: must be one of true, false, 1, 0, yes, no (got "${raw}")`);
    }
    return value;
  }
  if (types.includes('array')) return raw.split(',').map((item) => item.trim()).filter(Boolean);
  if (types.includes('integer') && /^\s*-?\d+\s*$/.test(raw)) return Number(raw);
  if (types.includes('number') && /^\s*-?\d+(\.\d+)?\s*$/.test(raw)) return Number(raw);
  return raw;
}

export interface EnvOverrides {
  values: Record<string, unknown>;
  /** Dotted key path -> the variable that set it, to name it in error messages. */
  sources: Map<string, string>;
}

/** The configuration values set by ALYX_* variables of `env`. */
export function readEnvOverrides(env: NodeJS.ProcessEnv): EnvOverrides {
  const values: Record<string, unknown> = {};
  const sources = new Map<string, string>();
  for (const key of configEnvKeys()) {
    const raw = env[key.variable];
    if (raw === undefined) continue;
    setPath(values, key.keyPath, coerce(key, raw));
    sources.set(key.keyPath.join('.'), key.variable);
  }
  return { values, sources };
}

export function setPath(target: Record<string, unknown>, keyPath: string[], value: unknown): void {
  let node = target;
  for (const key of keyPath.slice(0, -1)) {
    if (!isMapping(node[key])) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keyPath[keyPath.length - 1]] = value;
}
