import fs from 'node:fs';
import path from 'node:path';
import { cleanEnv, runCli } from '../helpers/cli';
import { makeProject, removeProject } from '../helpers/project';
import { hasCommand, warnSkip } from '../helpers/tools';

const LABELS = { node: 'Node.js', typescript: 'TypeScript', python: 'Python', deno: 'Deno', bun: 'Bun', go: 'Go' } as const;
const NEEDS: Partial<Record<keyof typeof LABELS, string>> = { python: 'python3', deno: 'deno', bun: 'bun', go: 'go' };

describe('alyx new', () => {
  let root: string;
  beforeEach(() => {
    root = makeProject({ 'functions/.keep': '' });
  });
  afterEach(() => removeProject(root));
  const alyx = (args: string[]) => runCli([...args, '-C', root], { env: cleanEnv(), timeoutMs: 120_000 });

  for (const [runtime, label] of Object.entries(LABELS)) {
    const tool = NEEDS[runtime as keyof typeof LABELS];
    const available = !tool || hasCommand(tool);
    if (!available) warnSkip(`alyx new --runtime ${runtime}`, tool as string);
    (available ? it : it.skip)(`--runtime ${runtime} scaffolds a function that answers from ${label}`, async () => {
      const created = await alyx(['new', `hello-${runtime}`, '--runtime', runtime]);
      expect(created.code).toBe(0);
      expect(created.stdout).toContain(`Created functions/hello-${runtime} (${runtime})`);
      expect(created.stdout).toContain(`curl -X POST http://127.0.0.1:8090/api/functions/hello-${runtime}`);
      const invoked = await alyx(['invoke', `hello-${runtime}`, '--dev', '-d', '{"name": "New"}']);
      expect(JSON.parse(invoked.stdout)).toMatchObject({ success: true, output: { message: `Hello, New! (from ${label})` } });
    }, 120_000);
  }

  it('typescript and go come with a manifest whose build produces the production output', async () => {
    await alyx(['new', 'ts', '--runtime', 'typescript']);
    await alyx(['new', 'gofn', '--runtime', 'go']);
    const listed = JSON.parse((await alyx(['list', '--json', '--prod'])).stdout).functions;
    expect(listed).toEqual([
      expect.objectContaining({ name: 'gofn', has_build: true, status: 'not_built', entry: 'bin/gofn' }),
      expect.objectContaining({ name: 'ts', has_build: true, status: 'not_built', entry: 'dist/index.js' }),
    ]);
    expect(fs.readFileSync(path.join(root, 'functions/ts/manifest.yaml'), 'utf8')).toContain('output: dist/index.js');
  });

  const go = hasCommand('go');
  if (!go) warnSkip('alyx new --runtime go, built for production', 'go');
  (go ? it : it.skip)('a new go function builds and runs as an executable in production', async () => {
    await alyx(['new', 'gofn', '--runtime', 'go']);
    expect((await alyx(['build', 'gofn'])).code).toBe(0);
    const invoked = JSON.parse((await alyx(['invoke', 'gofn', '--prod', '-d', '{"name": "Prod"}'])).stdout);
    expect(invoked.output).toEqual({ message: 'Hello, Prod! (from Go)' });
  }, 120_000);

  it('refuses to overwrite an existing folder (exit 1) and rejects bad names and runtimes (exit 2)', async () => {
    fs.mkdirSync(path.join(root, 'functions', 'taken'));
    fs.writeFileSync(path.join(root, 'functions', 'taken', 'index.js'), '// mine\n');
    const taken = await alyx(['new', 'taken', '--runtime', 'node']);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toContain('functions/taken already exists');
    expect(fs.readFileSync(path.join(root, 'functions', 'taken', 'index.js'), 'utf8')).toBe('// mine\n');
    expect((await alyx(['new', 'bad name', '--runtime', 'node'])).code).toBe(2);
    expect((await alyx(['new', 'x', '--runtime', 'ruby'])).code).toBe(2);
    expect(fs.existsSync(path.join(root, 'functions', 'x'))).toBe(false);
  });
});
