import { cleanEnv, runCli } from '../helpers/cli';
import { nodeFunction } from '../helpers/fixtures';
import { makeProject, removeProject } from '../helpers/project';

/** A function that reports every variable of its environment. */
const ENV_DUMP = nodeFunction("console.log(JSON.stringify({ success: true, output: process.env }));");

const ALYX_SECRETS = { ALYX_ADMIN_TOKEN: 'admin-secret', ALYX_DATABASE_URL: 'postgres://secret', ALYX_LOGGING_LEVEL: 'info' };

let root: string;
afterEach(() => removeProject(root));

async function environmentOf(config: string, env: NodeJS.ProcessEnv): Promise<Record<string, string>> {
  root = makeProject({
    'alyx.yaml': config,
    '.env': 'FROM_DOTENV=d\nALYX_FROM_DOTENV=never\n',
    'functions/dump/index.js': ENV_DUMP,
    'functions/dump/manifest.yaml': 'env:\n  FROM_MANIFEST: m\n  ALYX_FROM_MANIFEST: never\n',
  });
  const result = await runCli(['invoke', 'dump', '--prod', '-C', root], { env: cleanEnv(env) });
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout).output as Record<string, string>;
}

describe("a function's environment", () => {
  it('with inherit_env false holds only the SPEC list, the layers and what alyx sets: no ALYX_* of anyone', async () => {
    const env = await environmentOf('functions:\n  inherit_env: false\n  env:\n    FROM_CONFIG: c\n    ALYX_FROM_CONFIG: never\n', {
      ...ALYX_SECRETS,
      DATABASE_PASSWORD: 'not-passed',
      HOME: '/home/fn',
      LANG: 'C.UTF-8',
      TZ: 'UTC',
    });
    expect(Object.keys(env).sort()).toEqual(
      ['ALYX_FUNCTION', 'ALYX_MODE', 'FROM_CONFIG', 'FROM_DOTENV', 'FROM_MANIFEST', 'HOME', 'LANG', 'NODE_ENV', 'PATH', 'TZ'].concat(
        process.env.TMPDIR ? ['TMPDIR'] : [],
        process.env.LC_ALL ? ['LC_ALL'] : [],
      ).sort(),
    );
    expect(env).toMatchObject({ ALYX_FUNCTION: 'dump', ALYX_MODE: 'production', NODE_ENV: 'production', HOME: '/home/fn' });
  });

  it("inherits alyx's environment minus every ALYX_* variable, whichever layer names it", async () => {
    const env = await environmentOf('functions:\n  env:\n    FROM_CONFIG: c\n    ALYX_FROM_CONFIG: never\n', { ...ALYX_SECRETS, DATABASE_PASSWORD: 'passed' });
    expect(env.DATABASE_PASSWORD).toBe('passed');
    expect(Object.keys(env).filter((key) => key.startsWith('ALYX_')).sort()).toEqual(['ALYX_FUNCTION', 'ALYX_MODE']);
    expect(JSON.stringify(env)).not.toMatch(/admin-secret|postgres:\/\/secret|never/);
  });
});
