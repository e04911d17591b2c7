import { AlyxError } from '../../../src/errors';
import { route } from '../../../src/server/routes';

const refusal = (method: string, pathname: string): { code: string; allowed?: readonly string[] } => {
  try {
    route(method, pathname);
  } catch (error) {
    return { code: (error as AlyxError).code, allowed: (error as { allowed?: readonly string[] }).allowed };
  }
  throw new Error(`${method} ${pathname} was routed`);
};

describe('route', () => {
  it.each([
    ['GET', '/api/functions', null],
    ['GET', '/api/functions/', null],
    ['POST', '/api/functions/hello', 'hello'],
    ['DELETE', '/api/functions/hello/', 'hello'],
    ['GET', '/api/health', null],
    ['HEAD', '/api/health', null],
    ['GET', '/api/ready', null],
    ['POST', '/api/admin/reload', null],
  ])('%s %s is served (param %s)', (method, pathname, param) => {
    const found = route(method, pathname);
    expect(typeof found.handler).toBe('function');
    expect(found.param).toBe(param);
  });

  it('HEAD is served by the GET handler', () => {
    expect(route('HEAD', '/api/functions/x').handler).toBe(route('GET', '/api/functions/x').handler);
  });

  it('a known path with another method: METHOD_NOT_ALLOWED with what is allowed, HEAD with GET', () => {
    expect(refusal('POST', '/api/health')).toEqual({ code: 'METHOD_NOT_ALLOWED', allowed: ['GET', 'HEAD'] });
    expect(refusal('GET', '/api/admin/reload')).toEqual({ code: 'METHOD_NOT_ALLOWED', allowed: ['POST'] });
  });

  it('paths are routed as sent: no dot segments resolved, nothing nested', () => {
    expect(refusal('GET', '/api/functions/x/../y').code).toBe('NOT_FOUND');
    expect(refusal('GET', '/api/functions/a/b').code).toBe('NOT_FOUND');
    expect(refusal('GET', '/').code).toBe('NOT_FOUND');
  });
});
