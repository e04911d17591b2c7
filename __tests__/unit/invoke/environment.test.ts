import { buildFunctionEnv, type FunctionEnvInput } from '../../../src/invoke/environment';

const PROCESS_ENV: NodeJS.ProcessEnv = {
  PATH: '/usr/bin:/bin',
  HOME: '/home/u',
  LANG: 'C.UTF-8',
  LC_ALL: 'C',
  TZ: 'UTC',
  TMPDIR: '/tmp',
  SHELL: '/bin/bash',
  DATABASE_URL: 'postgres://process',
  ALYX_SERVER_PORT: '8090',
  ALYX_SECRET: 'never passed on',
};

function build(input: Partial<FunctionEnvInput> = {}): Record<string, string> {
  return buildFunctionEnv({
    mode: 'development',
    functionName: 'hello',
    inheritEnv: true,
    processEnv: PROCESS_ENV,
    dotenv: {},
    configEnv: {},
    manifestEnv: {},
    ...input,
  });
}

describe('buildFunctionEnv (SPEC §5)', () => {
  it("inherits alyx's environment minus ALYX_*", () => {
    const env = build();
    expect(env).toMatchObject({ PATH: '/usr/bin:/bin', SHELL: '/bin/bash', DATABASE_URL: 'postgres://process' });
    expect(Object.keys(env).filter((key) => key.startsWith('ALYX_')).sort()).toEqual(['ALYX_FUNCTION', 'ALYX_MODE']);
  });

  it('with inherit_env false passes only PATH HOME LANG LC_ALL TZ TMPDIR', () => {
    expect(build({ inheritEnv: false })).toEqual({
      PATH: '/usr/bin:/bin', HOME: '/home/u', LANG: 'C.UTF-8', LC_ALL: 'C', TZ: 'UTC', TMPDIR: '/tmp',
      ALYX_MODE: 'development', ALYX_FUNCTION: 'hello',
    });
  });

  it('with inherit_env false, an unset minimal variable stays unset', () => {
    expect(build({ inheritEnv: false, processEnv: { PATH: '/bin', SHELL: '/bin/sh' } })).toEqual({
      PATH: '/bin', ALYX_MODE: 'development', ALYX_FUNCTION: 'hello',
    });
  });

  it('.env applies with inherit_env false too, minus its ALYX_* lines', () => {
    const env = build({ inheritEnv: false, dotenv: { API_KEY: 'k', ALYX_SERVER_PORT: '1', ALYX_MODE: 'production' } });
    expect(env.API_KEY).toBe('k');
    expect(env.ALYX_SERVER_PORT).toBeUndefined();
    expect(env.ALYX_MODE).toBe('development');
  });

  it('layers: process < .env < functions.env < manifest env, each later one winning', () => {
    const env = build({
      processEnv: { ...PROCESS_ENV, A: 'process', B: 'process', C: 'process', D: 'process' },
      dotenv: { B: 'dotenv', C: 'dotenv', D: 'dotenv' },
      configEnv: { C: 'config', D: 'config' },
      manifestEnv: { D: 'manifest' },
    });
    expect(env).toMatchObject({ A: 'process', B: 'dotenv', C: 'config', D: 'manifest' });
  });

  it.each(['development', 'production'] as const)('sets ALYX_MODE=%s and ALYX_FUNCTION last, over every layer', (mode) => {
    const env = build({
      mode,
      processEnv: { ...PROCESS_ENV, ALYX_MODE: 'x', ALYX_FUNCTION: 'x' },
      configEnv: { ALYX_MODE: 'config', ALYX_FUNCTION: 'config' },
      manifestEnv: { ALYX_MODE: 'manifest', ALYX_FUNCTION: 'manifest' },
    });
    expect(env.ALYX_MODE).toBe(mode);
    expect(env.ALYX_FUNCTION).toBe('hello');
  });

  it('drops ALYX_* keys of functions.env and the manifest env too', () => {
    const env = build({ configEnv: { ALYX_ADMIN_TOKEN: 'from-config', KEPT: 'c' }, manifestEnv: { ALYX_SERVER_PORT: '1', ALSO: 'm' } });
    expect(Object.keys(env).filter((key) => key.startsWith('ALYX_')).sort()).toEqual(['ALYX_FUNCTION', 'ALYX_MODE']);
    expect(env).toMatchObject({ KEPT: 'c', ALSO: 'm' });
  });

  it('NODE_ENV=production in production when unset', () => {
    expect(build({ mode: 'production' }).NODE_ENV).toBe('production');
  });

  it('NODE_ENV is not set in development', () => {
    expect(build({ mode: 'development' }).NODE_ENV).toBeUndefined();
  });

  it.each([
    ["alyx's environment", { processEnv: { ...PROCESS_ENV, NODE_ENV: 'staging' } }],
    ['.env', { dotenv: { NODE_ENV: 'staging' } }],
    ['functions.env', { configEnv: { NODE_ENV: 'staging' } }],
    ['the manifest env', { manifestEnv: { NODE_ENV: 'staging' } }],
  ])('in production a NODE_ENV already set by %s is kept', (_where, layer) => {
    expect(build({ mode: 'production', ...layer }).NODE_ENV).toBe('staging');
  });

  it('ALYX_REUSE=1 for a reuse process only (SPEC §10), whatever a layer says', () => {
    expect(build({ reuse: true }).ALYX_REUSE).toBe('1');
    expect(build({ manifestEnv: { ALYX_REUSE: '1' } }).ALYX_REUSE).toBeUndefined();
  });

  it("appends the python helper's folder to PYTHONPATH, after the function's own", () => {
    expect(build({ pythonHelperDir: '/alyx/shims/python' }).PYTHONPATH).toBe('/alyx/shims/python');
    expect(build({ pythonHelperDir: '/alyx/shims/python', manifestEnv: { PYTHONPATH: '/mine' } }).PYTHONPATH).toBe('/mine:/alyx/shims/python');
    expect(build({ manifestEnv: { PYTHONPATH: '/mine' } }).PYTHONPATH).toBe('/mine');
  });

  it('does not modify the inputs', () => {
    const processEnv = { ...PROCESS_ENV };
    build({ mode: 'production', processEnv });
    expect(processEnv).toEqual(PROCESS_ENV);
  });
});
