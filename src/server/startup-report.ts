import fs from 'node:fs';
import path from 'node:path';
import type { AlyxConfig } from '../config/resolve';
import { formatTable } from '../text-table';
import type { RegisteredFunction } from '../functions/registry';
import type { FunctionDef } from '../functions/types';
import type { Logger } from '../logger';

/**
 * Logs each function's status and what will run: one readable table for people (pretty), one
 * structured line per function for machines (json).
 */
export function reportFunctions(logger: Logger, config: AlyxConfig, functions: RegisteredFunction[], baseUrl: string): void {
  const rows = functions.map(({ def, plan }) => ({
    name: def.name,
    runtime: def.runtime ?? '-',
    status: plan.status,
    runs: plan.command ? describeRun(plan.exec, plan.file, config.projectDir) : (plan.message ?? ''),
    url: `${baseUrl}/api/functions/${def.name}`,
    routes: ingressPaths(def),
  }));
  for (const { def } of functions) {
    if (def.ignoredHooks.length === 0) continue;
    const types = [...new Set(def.ignoredHooks)].join(' and ');
    logger.warn({ function: def.name, hooks: def.ignoredHooks }, `${def.name}: ignoring its hooks of type ${types}: they need the earlier Alyx server's database`);
  }
  if (rows.length === 0) {
    // In every log format: a first run in the wrong folder must say so, not serve nothing quietly.
    logger.warn({ functions_path: config.functions.path, exists: fs.existsSync(config.functions.path) }, noFunctionsMessage(config));
    return;
  }
  if (config.logging.format === 'json') {
    for (const row of rows) logger.info({ function: row.name, runtime: row.runtime, status: row.status, runs: row.runs, url: row.url, ...(row.routes ? { routes: row.routes } : {}) }, 'function');
    return;
  }
  const ready = rows.filter((row) => row.status === 'ready');
  const table = formatTable(
    ['NAME', 'RUNTIME', 'STATUS', 'RUNS', 'URL', ...(rows.some((row) => row.routes) ? ['ROUTES'] : [])],
    rows.map((row) =>
      row.status === 'ready' ? [row.name, row.runtime, row.status, row.runs, row.url, row.routes ?? ''] : [row.name, row.runtime, row.status, '-', '-', ''],
    ),
  );
  const problems = rows.filter((row) => row.status !== 'ready').map((row) => `  ${row.name}: ${row.runs}`);
  logger.info([`${ready.length} of ${rows.length} functions ready`, table, ...(problems.length ? ['', ...problems] : [])].join('\n'));
}

/** Why nothing is served, and what to do: the folder is missing, or holds no function. */
export function noFunctionsMessage(config: AlyxConfig): string {
  const shown = path.relative(config.projectDir, config.functions.path) || '.';
  const create = `add a folder such as ${shown}/hello/index.js, or run "alyx new hello"`;
  if (!fs.existsSync(config.functions.path)) return `the functions folder ${config.functions.path} does not exist: create it and ${create}`;
  return `no functions in ${config.functions.path}: ${create}`;
}

/** A function's routes and webhook paths, as people read them ("GET,POST /users/:id"); undefined when it has none. */
export function ingressPaths(def: FunctionDef): string | undefined {
  const paths = [...def.routes, ...def.webhooks.map((hook) => ({ ...hook, path: `${hook.path} (webhook)` }))].map((route) => `${route.methods.join(',')} ${route.path}`);
  return paths.length > 0 ? paths.join(', ') : undefined;
}

function describeRun(exec: 'interpreter' | 'direct', file: string | null, projectDir: string): string {
  const shown = file ? path.relative(projectDir, file) : '?';
  return exec === 'direct' ? `${shown} (executable)` : shown;
}
