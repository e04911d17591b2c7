import path from 'node:path';
import type { Mode } from '../config/resolve';

/** With functions.inherit_env false, only these pass from alyx's environment. */
export const MINIMAL_ENV_KEYS = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR'];

export interface FunctionEnvInput {
  mode: Mode;
  functionName: string;
  inheritEnv: boolean;
  /** alyx's own environment. */
  processEnv: NodeJS.ProcessEnv;
  /** The project's .env file. */
  dotenv: Readonly<Record<string, string>>;
  /** functions.env from alyx.yaml, expanded. */
  configEnv: Readonly<Record<string, string>>;
  /** The manifest's env, expanded. */
  manifestEnv: Readonly<Record<string, string>>;
  /** SPEC §10: a reuse process's environment says so (ALYX_REUSE=1), and its helper then loops. */
  reuse?: boolean;
  /** A folder appended to PYTHONPATH: alyx's python helper, for python functions. */
  pythonHelperDir?: string;
}

const isAlyxVariable = (key: string): boolean => key.startsWith('ALYX_');

/**
 * SPEC §5: the environment of a function's process, later layers winning. ALYX_* variables never
 * reach a function, whichever layer names them (alyx's settings and its admin token live there);
 * alyx then sets its own ALYX_MODE and ALYX_FUNCTION
 * (and ALYX_REUSE for a reuse process).
 */
export function buildFunctionEnv(input: FunctionEnvInput): Record<string, string> {
  const env: Record<string, string> = {};
  const inherited = input.inheritEnv ? Object.keys(input.processEnv) : MINIMAL_ENV_KEYS;
  for (const key of inherited) {
    const value = input.processEnv[key];
    if (value !== undefined && !isAlyxVariable(key)) env[key] = value;
  }
  for (const layer of [input.dotenv, input.configEnv, input.manifestEnv]) {
    for (const [key, value] of Object.entries(layer)) if (!isAlyxVariable(key)) env[key] = value;
  }
  env.ALYX_MODE = input.mode;
  env.ALYX_FUNCTION = input.functionName;
  if (input.mode === 'production' && env.NODE_ENV === undefined) env.NODE_ENV = 'production';
  if (input.reuse) env.ALYX_REUSE = '1';
  // Appended: a folder of the function's own (or its .venv) wins over alyx's helper.
  if (input.pythonHelperDir) env.PYTHONPATH = env.PYTHONPATH ? `${env.PYTHONPATH}${path.delimiter}${input.pythonHelperDir}` : input.pythonHelperDir;
  return env;
}
