import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, runCli, shellEnv } from '../helpers/cli';
import { makeProject, removeProject } from '../helpers/project';
import { hasCommand, warnSkip } from '../helpers/tools';

/** alyx build installs what a function needs before building: npm packages, a python .venv, Go modules. */

let root: string;
afterEach(() => removeProject(root));

const build = (...args: string[]) => runCli(['build', '-C', root, ...args], { env: shellEnv(), timeoutMs: 240_000 });

describe('alyx build installs first', () => {
  it('a TypeScript function from alyx new: npm install, then its esbuild build; --no-install skips it and says what to do', async () => {
    // alyx installed in the project: the scaffold imports its helper, which esbuild bundles.
    root = makeProject({ 'node_modules/alyx': { symlink: REPO_ROOT } });
    expect((await runCli(['new', 'hello-ts', '--runtime', 'typescript', '-C', root], { env: shellEnv() })).code).toBe(0);
    const dir = path.join(root, 'functions', 'hello-ts');

    const skipped = await build('--no-install');
    expect(skipped.code).toBe(1);
    expect(skipped.stdout).not.toMatch(/installing/);
    expect(skipped.stdout).toMatch(/node_modules is missing: run "alyx build" without --no-install/);

    const built = await build();
    expect([built.code, built.stderr]).toEqual([0, '']);
    expect(built.stdout).toMatch(/▸ hello-ts: installing: npm install --no-audit --no-fund/);
    expect(built.stdout).toMatch(/✓ hello-ts built in .* -> functions\/hello-ts\/dist\/index\.js/);
    expect(fs.existsSync(path.join(dir, 'node_modules', '.bin', 'esbuild'))).toBe(true);

    // Installed once: the next build goes straight to building.
    const again = await build();
    expect(again.code).toBe(0);
    expect(again.stdout).not.toMatch(/installing/);
  }, 300_000);

  it('a python function with requirements.txt gets a .venv, which alyx then runs it with', async () => {
    if (!hasCommand('python3')) return warnSkip('python .venv install', 'python3');
    root = makeProject({
      'functions/py/index.py': 'import json, sys\njson.load(sys.stdin)\nprint(json.dumps({"success": True, "output": sys.prefix}))\n',
      'functions/py/requirements.txt': '# no third-party packages: installs offline\n',
    });
    const built = await build();
    expect([built.code, built.stdout]).toEqual([0, expect.stringMatching(/installing: python3 -m venv \.venv[\s\S]*installing: \.venv\/bin\/python -m pip install .* -r requirements\.txt[\s\S]*✓ py installed/)]);
    const venv = path.join(root, 'functions', 'py', '.venv');
    expect(fs.existsSync(path.join(venv, 'bin', 'python'))).toBe(true);
    const invoked = await runCli(['invoke', 'py', '-C', root, '--json'], { env: shellEnv() });
    expect(JSON.parse(invoked.stdout).output).toBe(fs.realpathSync(venv));
  }, 120_000);

  it('a Go function runs go mod download before go build', async () => {
    if (!hasCommand('go')) return warnSkip('go mod download', 'go');
    root = makeProject();
    expect((await runCli(['new', 'hello-go', '--runtime', 'go', '-C', root], { env: shellEnv() })).code).toBe(0);
    const built = await build();
    expect([built.code, built.stdout]).toEqual([0, expect.stringMatching(/installing: go mod download[\s\S]*▸ hello-go: go build[\s\S]*✓ hello-go built/)]);
  }, 180_000);
});
