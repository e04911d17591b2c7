import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors';

/** SPEC §6: the bearer token of the admin endpoints, given directly. */
export const ADMIN_TOKEN_VARIABLE = 'ALYX_ADMIN_TOKEN';
/** The file that holds it instead (the Docker and Kubernetes secrets convention). */
export const ADMIN_TOKEN_FILE_VARIABLE = 'ALYX_ADMIN_TOKEN_FILE';

/** A token is a few dozen bytes: anything much larger is the wrong file. */
const MAX_TOKEN_FILE_BYTES = 64 * 1024;

/**
 * The admin token, from ALYX_ADMIN_TOKEN or from the file ALYX_ADMIN_TOKEN_FILE names
 * (surrounding whitespace, such as the file's last newline, is not part of it); null when
 * neither is set. An empty variable counts as unset.
 */
export function readAdminToken(env: NodeJS.ProcessEnv): string | null {
  const direct = env[ADMIN_TOKEN_VARIABLE] || null;
  const file = env[ADMIN_TOKEN_FILE_VARIABLE] || null;
  if (direct !== null && file !== null) {
    throw new ConfigError(`${ADMIN_TOKEN_VARIABLE} and ${ADMIN_TOKEN_FILE_VARIABLE} are both set: keep only ${ADMIN_TOKEN_FILE_VARIABLE}, which keeps the token out of every process's environment`);
  }
  return file === null ? direct : readTokenFile(path.resolve(file));
}

function readTokenFile(file: string): string {
  let text: string;
  let fd: number | null = null;
  try {
    // Opened without blocking, so that a FIFO or a device fails the checks below instead of hanging.
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new ConfigError(`${ADMIN_TOKEN_FILE_VARIABLE}: ${file} is not a regular file`);
    if (stat.size > MAX_TOKEN_FILE_BYTES) throw new ConfigError(`${ADMIN_TOKEN_FILE_VARIABLE}: ${file} is ${stat.size} bytes, too large for a token`);
    text = fs.readFileSync(fd, 'utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new ConfigError(`${ADMIN_TOKEN_FILE_VARIABLE}: cannot read ${file} (${code})`);
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
  const token = text.trim();
  if (token === '') throw new ConfigError(`${ADMIN_TOKEN_FILE_VARIABLE}: ${file} is empty`);
  return token;
}
