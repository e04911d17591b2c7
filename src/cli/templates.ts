/**
 * `alyx new` templates: each writes a function that answers {"message": "Hello, <name>! (from
 * <label>)"}, written with alyx's helper for its language (SPEC §10), so it runs in reuse mode too.
 */
import fs from 'node:fs';
import path from 'node:path';

export const TEMPLATE_RUNTIMES = ['node', 'typescript', 'python', 'deno', 'bun', 'go'] as const;
export type TemplateRuntime = (typeof TEMPLATE_RUNTIMES)[number];

export interface Template {
  /** Files relative to the new function folder; `schema` is where the manifest's JSON Schema is. */
  files(name: string, schema: string): Record<string, string>;
}

const greeting = (label: string): string => `Hello, \${name}! (from ${label})`;

/** node and bun: CommonJS-free ESM through alyx/handler; `typed` adds the TypeScript annotations. */
const jsHandler = (label: string, typed: boolean, from = 'alyx/handler'): string =>
  [
    `import { handler${typed ? ', type Context' : ''} } from '${from}';`,
    '',
    ...(typed ? ['interface Input {', '  name?: string;', '}', ''] : []),
    `export default handler(async (input${typed ? ': Input, ctx: Context' : ', ctx'}) => {`,
    "  const name = input.name || 'World';",
    "  ctx.log.info('greeting', { name });",
    `  return { message: \`${greeting(label)}\` };`,
    '});',
    '',
  ].join('\n');

const pythonHandler = [
  'from typing import Any, Dict',
  '',
  'from alyx import Context, handler',
  '',
  '',
  '@handler',
  'def main(input: Dict[str, Any], ctx: Context) -> Dict[str, str]:',
  '    name = input.get("name") or "World"',
  '    ctx.log.info("greeting", {"name": name})',
  '    return {"message": f"Hello, {name}! (from Python)"}',
  '',
].join('\n');

const goHandler = [
  'package main',
  '',
  'import "fmt"',
  '',
  'type Input struct {',
  '\tName string `json:"name"`',
  '}',
  '',
  'type Output struct {',
  '\tMessage string `json:"message"`',
  '}',
  '',
  '// Handle (alyx.go, alyx\'s helper) reads the request and writes the response.',
  'func main() {',
  '\tHandle(func(input Input, ctx *Context) (Output, error) {',
  '\t\tname := input.Name',
  '\t\tif name == "" {',
  '\t\t\tname = "World"',
  '\t\t}',
  '\t\tctx.Log.Info("greeting", map[string]string{"name": name})',
  '\t\treturn Output{Message: fmt.Sprintf("Hello, %s! (from Go)", name)}, nil',
  '\t})',
  '}',
  '',
].join('\n');

/** deno resolves `npm:alyx/handler` from the project's node_modules, where alyx is installed, without fetching it. */
const DENO_JSON = `${JSON.stringify({ nodeModulesDir: 'manual' }, null, 2)}\n`;

/** The Go helper ships beside src/ and dist/ alike; the scaffold copies it into the function folder. */
const goHelper = (): string => fs.readFileSync(path.resolve(__dirname, '..', '..', 'shims', 'go', 'alyx.go'), 'utf8');

/**
 * A manifest whose first line lets editors (the YAML language server) check it against the
 * schema; `settings` are its lines, or the commented keys a newcomer most often wants.
 */
const manifest = (schema: string, settings: string[] = ['# timeout: 10s', '# memory: 128mb']): string =>
  [`# yaml-language-server: $schema=${schema}`, ...settings, ''].join('\n');

export const TEMPLATES: Readonly<Record<TemplateRuntime, Template>> = {
  node: { files: (_name, schema) => ({ 'index.mjs': jsHandler('Node.js', false), 'manifest.yaml': manifest(schema) }) },
  typescript: {
    files: (name, schema) => ({
      'index.ts': jsHandler('TypeScript', true),
      'package.json': `${JSON.stringify(
        {
          name,
          private: true,
          scripts: { build: 'esbuild index.ts --bundle --platform=node --format=cjs --outfile=dist/index.js' },
          devDependencies: { esbuild: '^0.24.0' },
        },
        null,
        2,
      )}\n`,
      'manifest.yaml': manifest(schema, [
        '# Development runs index.ts directly; production runs the bundle.',
        'build:',
        '  command: npm',
        '  args: [run, build]',
        '  watch: ["*.ts"]',
        '  output: dist/index.js',
      ]),
    }),
  },
  python: { files: (_name, schema) => ({ 'index.py': pythonHandler, 'manifest.yaml': manifest(schema) }) },
  deno: { files: (_name, schema) => ({ 'mod.ts': jsHandler('Deno', true, 'npm:alyx/handler'), 'deno.json': DENO_JSON, 'manifest.yaml': manifest(schema) }) },
  bun: { files: (_name, schema) => ({ 'index.tsx': jsHandler('Bun', true), 'manifest.yaml': manifest(schema) }) },
  go: {
    files: (name, schema) => ({
      'main.go': goHandler,
      'alyx.go': goHelper(),
      'go.mod': `module example.com/${name}\n\ngo 1.19\n`,
      'manifest.yaml': manifest(schema, [
        '# Development runs "go run ."; production executes the compiled binary.',
        'build:',
        '  command: go',
        `  args: [build, -o, bin/${name}, .]`,
        `  output: bin/${name}`,
      ]),
    }),
  },
};
