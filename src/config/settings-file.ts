import fs from 'node:fs';

/** alyx.yaml, a manifest or .env is a few lines; anything near this is a mistake or an attack. */
export const MAX_SETTINGS_FILE_BYTES = 1024 * 1024;

export type SettingsFileResult = { ok: true; text: string } | { ok: false; problem: string };

/**
 * Reads a settings file (alyx.yaml, a manifest, .env). It must be a regular file of a sane size:
 * a FIFO would block alyx for good, and /dev/zero behind a symbolic link would never end.
 */
export function readSettingsFile(file: string): SettingsFileResult {
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) return { ok: false, problem: 'is not a regular file: replace it with a plain text file' };
    if (stat.size > MAX_SETTINGS_FILE_BYTES) {
      return { ok: false, problem: `is ${stat.size} bytes, over the ${MAX_SETTINGS_FILE_BYTES / 1048576} MB a settings file may have` };
    }
    return { ok: true, text: fs.readFileSync(file, 'utf8') };
  } catch (error) {
    return { ok: false, problem: `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})` };
  }
}
