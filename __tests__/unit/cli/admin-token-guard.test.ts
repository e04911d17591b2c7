import { guardAdminToken } from '../../../src/cli/admin-token-guard';
import { eraseFromEnviron } from '../../../src/host/environ-block';
import { ancestorsShowing, ptraceRestricted } from '../../../src/host/secret-exposure';
import { makeUndumpable } from '../../../src/host/undumpable';

jest.mock('../../../src/host/environ-block');
jest.mock('../../../src/host/secret-exposure');
jest.mock('../../../src/host/undumpable');

const erased = jest.mocked(eraseFromEnviron);
const undumpable = jest.mocked(makeUndumpable);
const restricted = jest.mocked(ptraceRestricted);
const ancestors = jest.mocked(ancestorsShowing);

/** What each way of keeping the token gave, as a machine without the addon or Yama would. */
function given({ erase = true, addon = true, yama = false, shownBy = [] as Array<{ pid: number; name: string }>, uid = 1000 }): void {
  erased.mockReturnValue(erase);
  undumpable.mockReturnValue(addon);
  restricted.mockReturnValue(yama);
  ancestors.mockReturnValue(shownBy);
  jest.spyOn(process, 'getuid').mockReturnValue(uid);
}

afterEach(() => {
  jest.restoreAllMocks();
  jest.clearAllMocks();
});

describe('how a function could still read the admin token', () => {
  it('nowhere, with the block erased and the addon built: and ALYX_* leaves the environment first', () => {
    given({});
    expect(guardAdminToken('t0ken-of-admin')).toEqual([]);
    expect(erased).toHaveBeenCalledWith(['ALYX_ADMIN_TOKEN', 'ALYX_ADMIN_TOKEN_FILE']);
    expect(erased.mock.invocationCallOrder[0]).toBeLessThan(undumpable.mock.invocationCallOrder[0]);
  });

  it('without a token the variables are still erased, and nothing else is done', () => {
    given({});
    expect(guardAdminToken(null)).toEqual([]);
    expect(erased).toHaveBeenCalled();
    expect(undumpable).not.toHaveBeenCalled();
  });

  it('without the addon and without Yama: alyx\'s memory, and what to do', () => {
    given({ addon: false });
    expect(guardAdminToken('t0ken-of-admin')).toEqual([expect.stringMatching(/^functions can read alyx's memory \(\/proc\/\d+\/mem\): build alyx where a C compiler is/)]);
  });

  it('without the addon, where Yama keeps a function from tracing alyx: nothing', () => {
    given({ addon: false, yama: true });
    expect(guardAdminToken('t0ken-of-admin')).toEqual([]);
  });

  it('where the block could not be erased and there is no addon: its environment, pointing to ALYX_ADMIN_TOKEN_FILE', () => {
    given({ erase: false, addon: false, yama: true });
    expect(guardAdminToken('t0ken-of-admin')).toEqual([expect.stringMatching(/environ\) still shows ALYX_ADMIN_TOKEN: pass the token in a file named by ALYX_ADMIN_TOKEN_FILE/)]);
  });

  it('an ancestor that shows it, by pid and name', () => {
    given({ shownBy: [{ pid: 42, name: 'tini' }] });
    expect(guardAdminToken('t0ken-of-admin')).toEqual([expect.stringMatching(/^process 42 \(tini\), which started alyx.*ALYX_ADMIN_TOKEN_FILE/)]);
  });

  it('another variable that holds it, which functions would inherit', () => {
    given({});
    process.env.DEPLOY_ADMIN_TOKEN = 't0ken-of-admin';
    try {
      expect(guardAdminToken('t0ken-of-admin')).toEqual([expect.stringMatching(/^the variable DEPLOY_ADMIN_TOKEN holds the token too/)]);
    } finally {
      delete process.env.DEPLOY_ADMIN_TOKEN;
    }
  });

  it('as root: only that, whatever else holds', () => {
    given({ erase: false, addon: false, uid: 0 });
    expect(guardAdminToken('t0ken-of-admin')).toEqual([expect.stringMatching(/^alyx runs as root/)]);
  });
});
