import fs from 'node:fs';
import path from 'node:path';
import { cleanEnv, REPO_ROOT, runCli } from '../helpers/cli';
import { makeProject, removeProject } from '../helpers/project';
import { hasCommand, warnSkip } from '../helpers/tools';

const LABELS = { node: 'Node.js', typescript: 'TypeScript', python: 'Python', deno: 'Deno', bun: 'Bun', go: 'Go' } as const;
const NEEDS: Partial<Record<keyof typeof LABELS, string>> = { python: 'python3', deno: 'deno', bun: 'bun', go: 'go' };

describe('alyx new', () => {
  let root: string;
  beforeEach(() => {
    // alyx installed in the project, as the README's install step does: the scaffolds import its helper.
    root = makeProject({ 'functions/.keep': '', 'node_modules/alyx': { symlink: REPO_ROOT } });
  });
  afterEach(() => removeProject(root));
  const alyx = (args: string[]) => runCli([...args, '-C', root], { env: cleanEnv(), timeoutMs: 120_000 });

  for (const [runtime, label] of Object.entries(LABELS)) {
    const tool = NEEDS[runtime as keyof typeof LABELS];
    const available = !tool || hasCommand(tool);
    if (!available) warnSkip(`alyx new --runtime ${runtime}`, tool as string);
    (available ? it : it.skip)(`--runtime ${runtime} scaffolds a function written with the helper that answers from ${label}, one-shot and in reuse mode`, async () => {
      const created = await alyx(['new', `hello-${runtime}`, '--runtime', runtime]);
      expect(created.code).toBe(0);
      expect(created.stdout).toContain(`Created functions/hello-${runtime} (${runtime})`);
      expect(created.stdout).toContain(`curl -X POST http://127.0.0.1:8090/api/functions/hello-${runtime}`);
      expect(created.stdout).not.toContain('not installed');
      const expected = { success: true, output: { message: `Hello, New! (from ${label})` }, logs: [expect.objectContaining({ level: 'info', message: 'greeting', data: { name: 'New' } })] };
      const oneShot = await alyx(['invoke', `hello-${runtime}`, '--dev', '-d', '{"name": "New"}']);
      expect({ code: oneShot.code, envelope: JSON.parse(oneShot.stdout) }).toMatchObject({ code: 0, envelope: expected });
      fs.appendFileSync(path.join(root, 'functions', `hello-${runtime}`, 'manifest.yaml'), 'reuse: true\n');
      const reused = await alyx(['invoke', `hello-${runtime}`, '--dev', '-d', '{"name": "New"}']);
      expect({ code: reused.code, envelope: JSON.parse(reused.stdout) }).toMatchObject({ code: 0, envelope: expected });
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
    fs.appendFileSync(path.join(root, 'functions', 'gofn', 'manifest.yaml'), 'reuse: true\n');
    const reused = JSON.parse((await alyx(['invoke', 'gofn', '--prod', '-d', '{"name": "Reuse"}'])).stdout);
    expect(reused.output).toEqual({ message: 'Hello, Reuse! (from Go)' });
  }, 120_000);

  it('says how to install alyx where a scaffold that imports alyx/handler cannot find it', async () => {
    const bare = makeProject({ 'functions/.keep': '' });
    try {
      const created = await runCli(['new', 'fn', '--runtime', 'node', '-C', bare], { env: cleanEnv() });
      expect(created.code).toBe(0);
      expect(created.stdout).toContain(`It imports alyx/handler, which is not installed in this project: run "npm install --save-dev alyx" in ${bare}.`);
      const python = await runCli(['new', 'py', '--runtime', 'python', '-C', bare], { env: cleanEnv() });
      expect(python.stdout).not.toContain('not installed');
    } finally {
      removeProject(bare);
    }
  });

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
