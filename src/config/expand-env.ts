/**
 * Expands ${VAR} and $VAR from `env`; an unset variable expands to "" as in a shell. These values
 * go to functions, and alyx's own ALYX_* settings (the admin token among them) never do: they
 * expand to "" too, so a manifest cannot copy them under another name.
 */
export function expandEnv(value: string, env: NodeJS.ProcessEnv): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_match, braced, bare) => {
    const name: string = braced ?? bare;
    return name.startsWith('ALYX_') ? '' : (env[name] ?? '');
  });
}

/** Stringifies and expands every value of an `env:` mapping from alyx.yaml or a manifest. */
export function expandEnvMap(
  map: Record<string, string | number | boolean> | undefined,
  env: NodeJS.ProcessEnv,
): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(map ?? {})) result[key] = expandEnv(String(value), env);
  return result;
}
