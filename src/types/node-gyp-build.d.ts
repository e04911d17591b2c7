/** node-gyp-build ships no types: it loads the addon built in, or prebuilt for, a package folder. */
declare module 'node-gyp-build' {
  export default function load(packageFolder: string): unknown;
}
