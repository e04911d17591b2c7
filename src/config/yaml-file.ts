import { parseDocument } from 'yaml';
import { readSettingsFile } from './settings-file';

/** Why a YAML file could not be read as a mapping; null when it could. */
export type YamlFileResult = { ok: true; data: Record<string, unknown> } | { ok: false; problem: string };

/** Reads a YAML file that must hold a mapping (an empty file is an empty mapping). */
export function readYamlMapping(file: string): YamlFileResult {
  const read = readSettingsFile(file);
  if (!read.ok) return read;
  const doc = parseDocument(read.text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0];
    const where = first.linePos ? `line ${first.linePos[0].line}, column ${first.linePos[0].col}: ` : '';
    // The yaml library ends its message with the position too: say it once.
    const message = first.message.split('\n')[0].replace(/ at line \d+, column \d+:?\s*$/, '');
    return { ok: false, problem: `is not valid YAML (${where}${message})` };
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    // An alias bomb ("billion laughs") is refused here rather than expanded.
    return { ok: false, problem: `is not valid YAML (${(error as Error).message})` };
  }
  if (data === null || data === undefined) return { ok: true, data: {} };
  if (typeof data !== 'object' || Array.isArray(data)) {
    return { ok: false, problem: 'must be a mapping of keys (such as "server:" and "functions:") at the top level' };
  }
  return { ok: true, data: withoutNulls(data as Record<string, unknown>) };
}

/** `key:` with nothing after it (or only comments) means the key is not set. */
function withoutNulls(mapping: Record<string, unknown>): Record<string, unknown> {
  for (const [key, value] of Object.entries(mapping)) {
    if (value === null) delete mapping[key];
    else if (typeof value === 'object' && !Array.isArray(value)) withoutNulls(value as Record<string, unknown>);
  }
  return mapping;
}
