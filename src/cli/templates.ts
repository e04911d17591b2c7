/** `alyx new` templates: each writes a function that answers {"message": "Hello, <name>! (from <label>)"}. */

export const TEMPLATE_RUNTIMES = ['node', 'typescript', 'python', 'deno', 'bun', 'go'] as const;
export type TemplateRuntime = (typeof TEMPLATE_RUNTIMES)[number];

export interface Template {
  /** Files relative to the new function folder; `schema` is where the manifest's JSON Schema is. */
  files(name: string, schema: string): Record<string, string>;
}

const jsHandler = (label: string, typed: boolean): string => {
  const t = (annotation: string): string => (typed ? annotation : '');
  return [
    "let data = '';",
    `process.stdin.on('data', (chunk${t(': Buffer')}) => (data += chunk));`,
    "process.stdin.on('end', () => {",
    `  const request${t(': { input: { name?: string } }')} = JSON.parse(data);`,
    "  const name = request.input.name || 'World';",
    `  console.log(JSON.stringify({ success: true, output: { message: \`Hello, \${name}! (from ${label})\` } }));`,
    '});',
    '',
  ].join('\n');
};

const denoHandler = [
  'const request = JSON.parse(await new Response(Deno.stdin.readable).text());',
  "const name: string = request.input.name || 'World';",
  'console.log(JSON.stringify({ success: true, output: { message: `Hello, ${name}! (from Deno)` } }));',
  '',
].join('\n');

const bunHandler = [
  'const request: { input: { name?: string } } = JSON.parse(await Bun.stdin.text());',
  "const name = request.input.name || 'World';",
  'console.log(JSON.stringify({ success: true, output: { message: `Hello, ${name}! (from Bun)` } }));',
  '',
].join('\n');

const pythonHandler = [
  'import json',
  'import sys',
  '',
  'request = json.load(sys.stdin)',
  'name = request["input"].get("name") or "World"',
  'print(json.dumps({"success": True, "output": {"message": f"Hello, {name}! (from Python)"}}))',
  '',
].join('\n');

const goHandler = [
  'package main',
  '',
  'import (',
  '\t"encoding/json"',
  '\t"fmt"',
  '\t"os"',
  ')',
  '',
  'type request struct {',
  '\tInput struct {',
  '\t\tName string `json:"name"`',
  '\t} `json:"input"`',
  '}',
  '',
  'func main() {',
  '\tvar req request',
  '\t_ = json.NewDecoder(os.Stdin).Decode(&req)',
  '\tname := req.Input.Name',
  '\tif name == "" {',
  '\t\tname = "World"',
  '\t}',
  '\t_ = json.NewEncoder(os.Stdout).Encode(map[string]any{',
  '\t\t"success": true,',
  '\t\t"output":  map[string]any{"message": fmt.Sprintf("Hello, %s! (from Go)", name)},',
  '\t})',
  '}',
  '',
].join('\n');

/**
 * A manifest whose first line lets editors (the YAML language server) check it against the
 * schema; `settings` are its lines, or the commented keys a newcomer most often wants.
 */
const manifest = (schema: string, settings: string[] = ['# timeout: 10s', '# memory: 128mb']): string =>
  [`# yaml-language-server: $schema=${schema}`, ...settings, ''].join('\n');

export const TEMPLATES: Readonly<Record<TemplateRuntime, Template>> = {
  node: { files: (_name, schema) => ({ 'index.js': jsHandler('Node.js', false), 'manifest.yaml': manifest(schema) }) },
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
  deno: { files: (_name, schema) => ({ 'mod.ts': denoHandler, 'deno.json': '{}\n', 'manifest.yaml': manifest(schema) }) },
  bun: { files: (_name, schema) => ({ 'index.tsx': bunHandler, 'manifest.yaml': manifest(schema) }) },
  go: {
    files: (name, schema) => ({
      'main.go': goHandler,
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
