import path from 'node:path';
import fs from 'node:fs';
import { readYamlMapping } from '../config/yaml-file';
import { validateAgainst } from '../config/schemas';
import type { ManifestHook, ManifestRoute } from './routes';
import type { ManifestSchedule } from './schedules';
import type { Runtime } from './types';

export const MANIFEST_FILE_NAMES = ['manifest.yaml', 'manifest.yml'];

/** A manifest as written, after schema validation (keys of the earlier server dropped). */
export interface Manifest {
  name?: string;
  runtime?: Runtime;
  entry?: string;
  description?: string;
  timeout?: string | number;
  memory?: string | number;
  concurrency?: number;
  pool?: number;
  reuse?: boolean;
  env?: Record<string, string | number | boolean>;
  build?: { command?: string; args?: string[]; watch?: string[]; output: string };
  retries?: number;
  /** Checked beyond the schema by parseSchedules. */
  schedules?: ManifestSchedule[];
  /** Checked beyond the schema by parseIngress. */
  routes?: ManifestRoute[];
  hooks?: ManifestHook[];
  auth?: 'optional' | 'required';
}

export type ManifestResult =
  | { file: null }
  | { file: string; manifest: Manifest }
  | { file: string; problem: string };

/** Finds and validates a function folder's manifest; a problem is returned, never thrown. */
export function readManifest(dir: string): ManifestResult {
  const file = MANIFEST_FILE_NAMES.map((name) => path.join(dir, name)).find((candidate) => fs.existsSync(candidate));
  if (!file) return { file: null };
  const relative = path.basename(file);
  const read = readYamlMapping(file);
  if (!read.ok) return { file, problem: `${relative} ${read.problem}` };
  const problems = validateAgainst('manifest', read.data);
  if (problems.length > 0) return { file, problem: `${relative}: ${problems.join('; ')}` };
  const { dependencies: _dependencies, ...manifest } = read.data;
  return { file, manifest: manifest as Manifest };
}
