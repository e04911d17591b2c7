import { ADMIN_TOKEN_FILE_VARIABLE, ADMIN_TOKEN_VARIABLE } from '../config/admin-token';
import { eraseFromEnviron } from '../host/environ-block';
import { ancestorsShowing, ptraceRestricted } from '../host/secret-exposure';
import { makeUndumpable } from '../host/undumpable';

/**
 * Keeps the admin token from functions, which run as alyx's user: the variables leave
 * process.env and alyx's /proc/<pid>/environ, and alyx becomes undumpable where the addon is
 * built. Call it once the configuration holds the token, before any process starts. Returns
 * each way the token can still be read by a function, as a sentence that says what to do.
 */
export function guardAdminToken(token: string | null): string[] {
  const erased = eraseFromEnviron([ADMIN_TOKEN_VARIABLE, ADMIN_TOKEN_FILE_VARIABLE]);
  if (token === null) return [];
  if (process.getuid?.() === 0) {
    return ['alyx runs as root, and so do its functions: they can read anything, the token included; run alyx as a non-root user (docs/security.md)'];
  }
  const undumpable = makeUndumpable();
  const exposures: string[] = [];
  if (!erased && !undumpable) {
    exposures.push(`alyx's own environment (/proc/${process.pid}/environ) still shows ${ADMIN_TOKEN_VARIABLE}: pass the token in a file named by ${ADMIN_TOKEN_FILE_VARIABLE} instead`);
  }
  for (const [name, value] of Object.entries(process.env)) {
    if (value === token && !name.startsWith('ALYX_')) {
      exposures.push(`the variable ${name} holds the token too, and functions inherit alyx's environment (except ALYX_*): remove it from alyx's environment`);
    }
  }
  for (const ancestor of ancestorsShowing(ADMIN_TOKEN_VARIABLE, token)) {
    exposures.push(
      `process ${ancestor.pid} (${ancestor.name}), which started alyx, shows the token in its environment or command line: pass it in a file named by ${ADMIN_TOKEN_FILE_VARIABLE}, or have that process exec alyx`,
    );
  }
  if (!undumpable && !ptraceRestricted()) {
    exposures.push(`functions can read alyx's memory (/proc/${process.pid}/mem): build alyx where a C compiler is, so that its addon can prevent that`);
  }
  return exposures;
}
