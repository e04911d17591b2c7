import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { readAdminToken } from '../../../src/config/admin-token';
import { ConfigError } from '../../../src/errors';
import { makeProject, removeProject } from '../../helpers/project';

let dir: string;
beforeEach(() => (dir = makeProject({ 'token': '  s3cret-token\n', 'empty': '\n' })));
afterEach(() => removeProject(dir));

describe('the admin token (SPEC §6)', () => {
  it('comes from ALYX_ADMIN_TOKEN', () => {
    expect(readAdminToken({ ALYX_ADMIN_TOKEN: 'from-env' })).toBe('from-env');
  });

  it('or from the file ALYX_ADMIN_TOKEN_FILE names, without the surrounding whitespace', () => {
    expect(readAdminToken({ ALYX_ADMIN_TOKEN_FILE: path.join(dir, 'token') })).toBe('s3cret-token');
  });

  it('is null when neither is set, or when they are empty', () => {
    expect(readAdminToken({})).toBeNull();
    expect(readAdminToken({ ALYX_ADMIN_TOKEN: '', ALYX_ADMIN_TOKEN_FILE: '' })).toBeNull();
  });

  it.each([
    ['both set', () => ({ ALYX_ADMIN_TOKEN: 'a', ALYX_ADMIN_TOKEN_FILE: path.join(dir, 'token') }), /both set: keep only ALYX_ADMIN_TOKEN_FILE/],
    ['a missing file', () => ({ ALYX_ADMIN_TOKEN_FILE: path.join(dir, 'missing') }), /ALYX_ADMIN_TOKEN_FILE: cannot read .*missing \(ENOENT\)/],
    ['an empty file', () => ({ ALYX_ADMIN_TOKEN_FILE: path.join(dir, 'empty') }), /ALYX_ADMIN_TOKEN_FILE: .*empty is empty/],
    ['a folder', () => ({ ALYX_ADMIN_TOKEN_FILE: dir }), /is not a regular file/],
  ])('%s is a configuration error', (_what, env, message) => {
    expect(() => readAdminToken(env())).toThrow(ConfigError);
    expect(() => readAdminToken(env())).toThrow(message);
  });

  it('a FIFO is refused instead of waiting for a writer', () => {
    const fifo = path.join(dir, 'fifo');
    spawnSync('mkfifo', [fifo]);
    if (!fs.existsSync(fifo)) return;
    expect(() => readAdminToken({ ALYX_ADMIN_TOKEN_FILE: fifo })).toThrow(/is not a regular file/);
  });
});
