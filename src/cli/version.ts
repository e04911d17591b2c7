import fs from 'node:fs';
import path from 'node:path';

let cached: string | undefined;

/** alyx's version, from its package.json. */
export function version(): string {
  cached ??= (JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  return cached;
}
