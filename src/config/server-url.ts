/**
 * The URL at which clients on this machine reach alyx: a wildcard host (0.0.0.0, ::) reads as
 * 127.0.0.1, and an IPv6 address is put in brackets.
 */
export function serverUrl(tls: boolean, host: string, port: number): string {
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `${tls ? 'https' : 'http'}://${shown.includes(':') ? `[${shown}]` : shown}:${port}`;
}
