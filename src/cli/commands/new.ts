import fs from 'node:fs';
import path from 'node:path';
import { FunctionExistsError, UsageError } from '../../errors';
import { FUNCTION_NAME_PATTERN, FUNCTION_NAME_RULE } from '../../functions/discovery';
import { loadContext, type ProjectOptions } from '../context';
import { TEMPLATES, type TemplateRuntime } from '../templates';

export interface NewOptions extends ProjectOptions {
  runtime: TemplateRuntime;
}

/** `alyx new NAME --runtime R`: scaffolds a working function; never overwrites. */
export async function newCommand(name: string, options: NewOptions): Promise<void> {
  if (!FUNCTION_NAME_PATTERN.test(name)) {
    throw new UsageError(`"${name}" is not a valid function name: ${FUNCTION_NAME_RULE}.`);
  }
  const { config } = loadContext(options, 'development', 2);
  const dir = path.join(config.functions.path, name);
  const shown = path.relative(config.projectDir, dir) || dir;
  if (fs.existsSync(dir)) throw new FunctionExistsError(shown);

  const template = TEMPLATES[options.runtime];
  const files = template.files(name);
  fs.mkdirSync(dir, { recursive: true });
  for (const [file, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), content);

  const url = `http://127.0.0.1:${config.server.port}/api/functions/${name}`;
  const lines = [
    `Created ${shown} (${options.runtime}):`,
    ...Object.keys(files).map((file) => `  ${path.join(shown, file)}`),
    '',
    'Call it:',
    `  alyx invoke ${name} --dev -d '{"name": "World"}'`,
    `  alyx dev, then: curl -X POST ${url} -H 'Content-Type: application/json' -d '{"name": "World"}'`,
  ];
  if (template.note) lines.push('', `Before "alyx build ${name}": ${template.note}.`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
