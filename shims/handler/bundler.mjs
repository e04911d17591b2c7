// The ESM face of alyx/handler for bundlers (the `module` condition, which esbuild and webpack
// read and node does not): a static import that a bundle can inline. index.mjs loads the same
// file through createRequire, which is faster in node but opaque to a bundler.
import helper from './index.cjs';

export const handler = helper.handler;
export const FunctionError = helper.FunctionError;
