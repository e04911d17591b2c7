import fs from 'node:fs';
import path from 'node:path';
import { FunctionExistsError, UsageError } from '../../errors';
import { FUNCTION_NAME_PATTERN, FUNCTION_NAME_RULE } from '../../functions/discovery';
import { loadContext, type ProjectOptions } from '../context';
import { SCHEMA_DIR } from '../../config/schemas';
import { askChoice, canAsk } from '../prompt';
import { TEMPLATE_RUNTIMES, TEMPLATES, type TemplateRuntime } from '../templates';

export interface NewOptions extends ProjectOptions {
  runtime?: TemplateRuntime;
}

const DEFAULT_RUNTIME: TemplateRuntime = 'node';

/**
 * `alyx new NAME [--runtime R]`: scaffolds a working function; never overwrites. Without
 * --runtime it asks on a terminal and takes node elsewhere, as create-vite does.
 */
export async function newCommand(name: string, options: NewOptions): Promise<void> {
  if (!FUNCTION_NAME_PATTERN.test(name)) {
    throw new UsageError(`"${name}" is not a valid function name: ${FUNCTION_NAME_RULE}.`);
  }
  const { config } = loadContext(options, 'development', 2);
  const dir = path.join(config.functions.path, name);
  const shown = path.relative(config.projectDir, dir) || dir;
  if (fs.existsSync(dir)) throw new FunctionExistsError(shown);

  const runtime = options.runtime ?? (canAsk() ? await askChoice(`Runtime for ${name}?`, TEMPLATE_RUNTIMES, DEFAULT_RUNTIME) : DEFAULT_RUNTIME);
  if (runtime === null) {
    process.stderr.write('alyx: cancelled, nothing was created.\n');
    process.exitCode = 130;
    return;
  }
  const template = TEMPLATES[runtime];
  const files = template.files(name, manifestSchemaRef(dir, config.projectDir));
  fs.mkdirSync(dir, { recursive: true });
  for (const [file, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), content);

  const url = `http://127.0.0.1:${config.server.port}/api/functions/${name}`;
  const lines = [
    `Created ${shown} (${runtime}):`,
    ...Object.keys(files).map((file) => `  ${path.join(shown, file)}`),
    '',
    'Call it:',
    `  alyx invoke ${name} --dev -d '{"name": "World"}'`,
    `  alyx dev, then: curl -X POST ${url} -H 'Content-Type: application/json' -d '{"name": "World"}'`,
  ];
  if (JS_RUNTIMES.has(runtime) && !helperResolves(dir)) {
    lines.push('', `It imports alyx/handler, which is not installed in this project: run "npm install --save-dev alyx" in ${config.projectDir}.`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** The runtimes whose scaffold imports `alyx/handler` from the project's node_modules. */
const JS_RUNTIMES: ReadonlySet<TemplateRuntime> = new Set(['node', 'typescript', 'deno', 'bun']);

/**
 * Whether `alyx/handler` resolves from the function's folder: node_modules/alyx in it or a folder
 * above, as node looks. (require.resolve cannot tell: from alyx's own code, a package resolves
 * its own name.)
 */
function helperResolves(functionDir: string): boolean {
  for (let dir = functionDir; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'node_modules', 'alyx', 'package.json'))) return true;
    if (path.dirname(dir) === dir) return false;
  }
}

/**
 * Where the manifest's `$schema` line points: the schema of the alyx that runs. Relative when
 * that alyx is installed in the project (or a folder above it, as in a monorepo), so the line
 * stays right in every clone; absolute otherwise (a global install, a checkout of alyx).
 */
export function manifestSchemaRef(functionDir: string, projectDir: string): string {
  const schema = path.join(SCHEMA_DIR, 'manifest.schema.json');
  const modules = path.dirname(path.dirname(SCHEMA_DIR));
  const installedHere = path.basename(modules) === 'node_modules' && isWithin(path.dirname(modules), projectDir);
  return installedHere ? path.relative(functionDir, schema).split(path.sep).join('/') : schema;
}

/** Whether `dir` is `inner` or one of the folders above it. */
function isWithin(dir: string, inner: string): boolean {
  const relative = path.relative(dir, inner);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}
