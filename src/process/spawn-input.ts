import { ExecutionError } from '../errors';

/**
 * A process's arguments and environment are C strings: a NUL byte ends one. posix_spawn would
 * cut such a value there and node's spawn refuses it; alyx refuses it the same way on both
 * paths, naming what holds it and never its value.
 */
export function refuseUnspawnable(command: string, args: readonly string[], env: Readonly<Record<string, string>>): void {
  for (const key of Object.keys(env)) {
    if (key.includes('\0')) {
      throw new ExecutionError(
        `An environment variable name of the function, ${JSON.stringify(key)}, holds a NUL byte, which no process environment can carry: rename it in the manifest's env, functions.env or the project's .env.`,
        { variable: key },
      );
    }
    if (env[key].includes('\0')) {
      throw new ExecutionError(
        `The function's environment variable ${key} holds a NUL byte, which no process environment can carry: remove it from the value in the manifest's env, functions.env or the project's .env.`,
        { variable: key },
      );
    }
  }
  for (const arg of [command, ...args]) {
    if (arg.includes('\0')) throw new ExecutionError(`The function's command line holds a NUL byte (${JSON.stringify(arg.replace(/\0/g, '\\0'))}): rename the file or folder.`);
  }
}
