import path from 'node:path';
import { parseEnv } from 'node:util';
import { readSettingsFile } from '../config/settings-file';

/** The project's .env file, parsed (dotenv syntax); {} when there is none or it cannot be read. It feeds the functions' environment, not alyx's settings. */
export function readDotenv(projectDir: string): Record<string, string> {
  const read = readSettingsFile(path.join(projectDir, '.env'));
  if (!read.ok) return {};
  try {
    const parsed = parseEnv(read.text);
    return Object.fromEntries(Object.entries(parsed).filter((entry): entry is [string, string] => entry[1] !== undefined));
  } catch {
    return {};
  }
}
