import path from 'node:path';
import type { AlyxConfig } from '../config/resolve';
import type { RegisteredFunction } from './registry';
import type { ScheduleDef } from './schedules';

/** One function as GET /api/functions and `alyx list --json` show it. */
export interface FunctionDescription {
  name: string;
  runtime: string | null;
  status: string;
  message?: string;
  /** The file that runs, relative to the function folder. */
  entry: string | null;
  exec: 'interpreter' | 'direct';
  has_build: boolean;
  timeout_ms: number;
  /** The command line alyx spawns (absolute program path first); null when not ready. */
  command: string[] | null;
  /** The interpreter found on PATH when it is a shim (pyenv, asdf, volta) that alyx resolved to `command[0]`. */
  shim?: string;
  /** Present (true) for a function in reuse mode (SPEC §10). */
  reuse?: true;
  /** Present when the function has routes or webhooks (SPEC §13); a webhook's secret is never shown. */
  routes?: Array<{ path: string; methods: readonly string[] }>;
  webhooks?: Array<{ path: string; methods: readonly string[]; mode: string; verification: string | null }>;
  /** Present (required) when a call needs a verified token. */
  auth?: 'required';
  /** Present when the function has schedules (SPEC §12). */
  schedules?: Array<Pick<ScheduleDef, 'name' | 'type' | 'expression' | 'timezone' | 'enabled'>>;
}

export function describeFunction({ def, plan }: RegisteredFunction, config: AlyxConfig): FunctionDescription {
  const description: FunctionDescription = {
    name: def.name,
    runtime: def.runtime,
    status: plan.status,
    entry: plan.file ? path.relative(def.dir, plan.file) : null,
    exec: plan.exec,
    has_build: def.build !== null,
    timeout_ms: def.timeoutMs ?? config.functions.timeoutMs,
    command: plan.command ? [plan.command, ...plan.args] : null,
  };
  if (plan.message) description.message = plan.message;
  if (plan.shim) description.shim = plan.shim;
  if (def.reuse) description.reuse = true;
  if (def.routes.length > 0) description.routes = def.routes.map(({ path: routePath, methods }) => ({ path: routePath, methods }));
  if (def.webhooks.length > 0) {
    description.webhooks = def.webhooks.map(({ path: hookPath, methods, mode, verification }) => ({ path: hookPath, methods, mode, verification: verification?.type ?? null }));
  }
  if (def.auth === 'required') description.auth = 'required';
  if (def.schedules.length > 0) {
    description.schedules = def.schedules.map(({ name, type, expression, timezone, enabled }) => ({ name, type, expression, timezone, enabled }));
  }
  return description;
}

export function describeAll(functions: Iterable<RegisteredFunction>, config: AlyxConfig): { functions: FunctionDescription[]; count: number } {
  const list = [...functions].map((fn) => describeFunction(fn, config));
  return { functions: list, count: list.length };
}
