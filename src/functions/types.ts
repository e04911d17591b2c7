import type { RuntimeName } from '../config/resolve';
import type { RouteDef, WebhookDef } from './routes';
import type { ScheduleDef } from './schedules';

export type Runtime = RuntimeName | 'binary';

export interface BuildConfig {
  /** Absent only for a prebuilt `binary` that alyx never builds. */
  readonly command: string | null;
  readonly args: readonly string[];
  /** Globs relative to the function folder; null means every file but the output and tool folders. */
  readonly watch: readonly string[] | null;
  /** Absolute path of the build's output, inside the function folder. */
  readonly output: string;
}

/** One folder under functions.path, as discovery found it. */
export interface FunctionDef {
  readonly name: string;
  /** Absolute path of the function's folder. */
  readonly dir: string;
  /** null only when the function is invalid. */
  readonly runtime: Runtime | null;
  /** Absolute path of the source entry; null for runtime binary and invalid functions. */
  readonly entry: string | null;
  readonly manifestFile: string | null;
  readonly description: string | null;
  readonly timeoutMs: number | null;
  readonly memoryBytes: number | null;
  readonly concurrency: number | null;
  readonly pool: number | null;
  /** SPEC §10: one process serves many invocations. */
  readonly reuse: boolean;
  /** The manifest's env, already expanded. */
  readonly env: Readonly<Record<string, string>>;
  readonly build: BuildConfig | null;
  /** SPEC §12: the manifest's schedules, checked; empty when it has none. */
  readonly schedules: readonly ScheduleDef[];
  /** Retries of its background invocations; null: `state.retries`. */
  readonly retries: number | null;
  /** SPEC §13: extra HTTP paths, inbound webhooks, and whether a call needs a verified token. */
  readonly routes: readonly RouteDef[];
  readonly webhooks: readonly WebhookDef[];
  readonly auth: 'optional' | 'required';
  /** Hook types of the earlier server that alyx accepts and ignores (database, auth): warned about at start. */
  readonly ignoredHooks: readonly string[];
  /** Why the function cannot run (bad name, bad manifest, no entry); null when valid. */
  readonly invalid: string | null;
}
