import fs from 'node:fs';
import path from 'node:path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { closestMatch } from './did-you-mean';
import { DURATION_PATTERN, SIZE_PATTERN } from './units';

/** The JSON Schemas ship in the package's schemas/ folder, where editors can use them too. */
export const SCHEMA_DIR = path.resolve(__dirname, '..', '..', 'schemas');

export type SchemaName = 'alyx' | 'manifest';
type JsonSchema = Record<string, unknown>;

const IGNORED_REF = '#/definitions/ignored';
/** The keyword that gives a key a default of its own in development ("development") or there on a terminal. */
const MODE_DEFAULT = 'x-mode-default';
const schemaCache = new Map<SchemaName, JsonSchema>();
const validatorCache = new Map<string, ValidateFunction>();

function readSchema(name: SchemaName): JsonSchema {
  let schema = schemaCache.get(name);
  if (!schema) {
    schema = JSON.parse(fs.readFileSync(path.join(SCHEMA_DIR, `${name}.schema.json`), 'utf8')) as JsonSchema;
    schemaCache.set(name, schema);
  }
  return schema;
}

function compile(name: SchemaName, useDefaults: boolean): ValidateFunction {
  const key = `${name}:${useDefaults}`;
  let validate = validatorCache.get(key);
  if (!validate) {
    const ajv = new Ajv({
      allErrors: true,
      verbose: true,
      useDefaults,
      allowUnionTypes: true,
      strictRequired: false,
    });
    // An annotation: the default in another mode (see modeDefaults), nothing to validate.
    ajv.addKeyword({ keyword: MODE_DEFAULT, schemaType: 'object' });
    ajv.addFormat('size', SIZE_PATTERN);
    ajv.addFormat('duration', DURATION_PATTERN);
    validate = ajv.compile(readSchema(name));
    validatorCache.set(key, validate);
  }
  return validate;
}

/**
 * Validates `data` against a schema and returns one readable problem per line, each naming
 * the key path with dots ("functions.timeout: must be a duration …"). With `useDefaults` the
 * schema's defaults are filled into `data` in place.
 */
export function validateAgainst(name: SchemaName, data: unknown, useDefaults = false): string[] {
  const validate = compile(name, useDefaults);
  if (validate(data)) return [];
  const problems = (validate.errors ?? []).map(describeError).filter((p): p is string => p !== null);
  return [...new Set(problems)];
}

/** The last segment of an ignored key path that stands for every key the schema does not name there. */
export const ANY_OTHER_KEY = '*';

/**
 * Key paths the schema marks as accepted-but-ignored (keys of the earlier Alyx server). A path
 * ending in ANY_OTHER_KEY covers every key of that mapping the schema does not name (`auth.*`).
 */
export function ignoredKeyPaths(name: SchemaName): string[][] {
  const found: string[][] = [];
  const walk = (schema: JsonSchema, prefix: string[]): void => {
    const properties = schema.properties as Record<string, JsonSchema> | undefined;
    for (const [key, child] of Object.entries(properties ?? {})) {
      if (child.$ref === IGNORED_REF) found.push([...prefix, key]);
      else walk(child, [...prefix, key]);
    }
    if ((schema.additionalProperties as JsonSchema | undefined)?.$ref === IGNORED_REF) found.push([...prefix, ANY_OTHER_KEY]);
  };
  walk(readSchema(name), []);
  return found;
}

/** Where a default depends on how alyx runs. */
export type DefaultsContext = 'development' | 'development on a terminal';

/** Key paths whose default differs by mode, with those defaults (the schema's `default` is production's). */
export function modeDefaults(name: SchemaName): Array<{ keyPath: string[]; byContext: Partial<Record<DefaultsContext, unknown>> }> {
  const found: Array<{ keyPath: string[]; byContext: Partial<Record<DefaultsContext, unknown>> }> = [];
  const walk = (schema: JsonSchema, prefix: string[]): void => {
    if (schema[MODE_DEFAULT]) found.push({ keyPath: prefix, byContext: schema[MODE_DEFAULT] as Partial<Record<DefaultsContext, unknown>> });
    for (const [key, child] of Object.entries((schema.properties as Record<string, JsonSchema>) ?? {})) walk(child, [...prefix, key]);
  };
  walk(readSchema(name), []);
  return found;
}

/** The schema node for a key path, used to coerce environment overrides to the right type. */
export function schemaAt(name: SchemaName, keyPath: string[]): JsonSchema | undefined {
  const root = readSchema(name);
  const definitions = root.definitions as Record<string, JsonSchema>;
  const deref = (node: JsonSchema): JsonSchema =>
    typeof node.$ref === 'string' ? { ...definitions[node.$ref.split('/').pop() as string], ...node, $ref: undefined } : node;
  let node: JsonSchema | undefined = root;
  for (const key of keyPath) {
    const properties = node?.properties as Record<string, JsonSchema> | undefined;
    node = properties?.[key] ? deref(properties[key]) : undefined;
    if (!node) return undefined;
  }
  return node;
}

export function dottedPath(instancePath: string): string {
  return instancePath.split('/').filter(Boolean).join('.');
}

function join(base: string, key: string): string {
  return base ? `${base}.${key}` : key;
}

/** What a problem shows of the value it is about; never a secret (a key the schema marks writeOnly). */
function shown(error: ErrorObject): string {
  if ((error.parentSchema as JsonSchema | undefined)?.writeOnly === true) return 'a value not shown here: it is a secret';
  return JSON.stringify(error.data) ?? String(error.data);
}

function describeError(error: ErrorObject): string | null {
  const at = dottedPath(error.instancePath);
  const parent = (error.parentSchema ?? {}) as JsonSchema;
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = (error.params as { additionalProperty: string }).additionalProperty;
      const properties = (parent.properties as Record<string, JsonSchema>) ?? {};
      const known = Object.keys(properties).filter((k) => k !== '$schema' && k !== 'dir');
      const used = known.filter((k) => properties[k].$ref !== IGNORED_REF);
      return `${join(at, key)}: unknown key${suggestion(key, used)} (known keys${at ? ` of ${at}` : ''}: ${known.join(', ')})`;
    }
    case 'required':
      return `${join(at, (error.params as { missingProperty: string }).missingProperty)}: is required`;
    case 'enum':
      if (error.propertyName) {
        const allowed = (error.params as { allowedValues: unknown[] }).allowedValues.map(String);
        return `${join(at, error.propertyName)}: unknown key${suggestion(error.propertyName, allowed)} (known keys of ${at}: ${allowed.join(', ')})`;
      }
      return `${at || 'value'}: must be one of ${(error.params as { allowedValues: unknown[] }).allowedValues.join(', ')} (got ${shown(error)})`;
    case 'propertyName':
    case 'propertyNames':
      return null; // reported by the enum error on the key itself
    case 'format':
    case 'pattern': // the same check as the format, written for editors: one message for both
    case 'type':
      if (typeof parent.description === 'string' && parent.format) {
        // A description starts with what the value is ("a size such as …"), then ";" and the rest.
        return `${at}: must be ${parent.description.split(';')[0]} (got ${shown(error)})`;
      }
      if (error.keyword === 'pattern') {
        const what = typeof parent.description === 'string' ? parent.description.split(';')[0] : `text matching ${(error.params as { pattern: string }).pattern}`;
        return `${at}: must be ${what} (got ${shown(error)})`;
      }
      return `${at || 'the document'}: must be ${readableType(error)} (got ${shown(error)})`;
    case 'if':
      return null; // the failing branch reports the real problem
    default:
      return `${at || 'the document'}: ${error.message ?? 'is invalid'} (got ${shown(error)})`;
  }
}

/** ", did you mean X?" when a known key is close to the one given. */
function suggestion(key: string, known: readonly string[]): string {
  const match = closestMatch(key, known);
  return match ? `, did you mean ${match}?` : '';
}

function readableType(error: ErrorObject): string {
  const type = (error.params as { type?: string | string[] }).type;
  const types = Array.isArray(type) ? type : String(type ?? '').split(',');
  const words: Record<string, string> = {
    object: 'a mapping of keys', array: 'a list', string: 'a string', integer: 'an integer',
    number: 'a number', boolean: 'true or false',
  };
  return types.map((t) => words[t] ?? t).join(' or ');
}
