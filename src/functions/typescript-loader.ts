import { pathToFileURL } from 'node:url';

let typeScriptLoader: string | null | undefined;

/** file: URL of the TypeScript loader alyx ships (tsx), resolved from alyx's own installation. */
export function findTypeScriptLoader(): string | null {
  if (typeScriptLoader === undefined) {
    try {
      typeScriptLoader = pathToFileURL(require.resolve('tsx')).href;
    } catch {
      typeScriptLoader = null;
    }
  }
  return typeScriptLoader;
}
