// alyx/handler for bundlers (the `module` condition, which esbuild and webpack read and node does
// not): a static import of the CommonJS file, which a bundle inlines whatever its output format.
// index.mjs, node's ESM face, locates itself through import.meta.url, which a CommonJS bundle
// does not have.
import helper from './index.cjs';

export const handler = helper.handler;
export const FunctionError = helper.FunctionError;
