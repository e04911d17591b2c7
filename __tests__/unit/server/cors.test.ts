import type { CorsConfig } from '../../../src/config/resolve';
import { corsHeaders } from '../../../src/server/cors';

const cors = (overrides: Partial<CorsConfig> = {}): CorsConfig => ({
  enabled: true,
  allowedOrigins: ['*'],
  allowedMethods: ['GET', 'POST'],
  allowedHeaders: ['Content-Type'],
  exposedHeaders: ['X-Request-Id'],
  allowCredentials: false,
  maxAgeS: 300,
  ...overrides,
});

describe('corsHeaders', () => {
  it('off, or no Origin: no headers', () => {
    expect(corsHeaders('https://a.example', cors({ enabled: false }))).toEqual({});
    expect(corsHeaders(undefined, cors())).toEqual({});
  });

  it('any origin without credentials: *, and the exposed headers', () => {
    expect(corsHeaders('https://a.example', cors())).toEqual({ 'Access-Control-Allow-Origin': '*', 'Access-Control-Expose-Headers': 'X-Request-Id' });
  });

  it('any origin with credentials: the origin echoed, with Vary', () => {
    expect(corsHeaders('https://a.example', cors({ allowCredentials: true }))).toEqual({
      'Access-Control-Allow-Origin': 'https://a.example',
      Vary: 'Origin',
      'Access-Control-Allow-Credentials': 'true',
      'Access-Control-Expose-Headers': 'X-Request-Id',
    });
  });

  it('a list of origins: a listed one is echoed with Vary; another gets nothing', () => {
    const listed = cors({ allowedOrigins: ['https://a.example'], exposedHeaders: [] });
    expect(corsHeaders('https://a.example', listed)).toEqual({ 'Access-Control-Allow-Origin': 'https://a.example', Vary: 'Origin' });
    expect(corsHeaders('https://evil.example', listed)).toEqual({});
  });
});
