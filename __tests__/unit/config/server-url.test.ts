import { serverUrl } from '../../../src/config/server-url';

describe('serverUrl', () => {
  it.each([
    [false, '127.0.0.1', 8090, 'http://127.0.0.1:8090'],
    [false, '0.0.0.0', 8090, 'http://127.0.0.1:8090'],
    [false, '::', 9000, 'http://127.0.0.1:9000'],
    [false, '::1', 9000, 'http://[::1]:9000'],
    [true, 'api.example.com', 443, 'https://api.example.com:443'],
  ])('tls %s, host %s, port %i: %s', (tls, host, port, url) => {
    expect(serverUrl(tls, host, port)).toBe(url);
  });
});
