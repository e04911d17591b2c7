// The ESM face of alyx/handler: the CommonJS implementation itself, so that a function that
// mixes import and require still has one FunctionError class and one server. createRequire
// loads it without node's CommonJS-from-ESM translation, which costs a function about 2 ms more.
import { createRequire } from 'node:module';

const helper = createRequire(import.meta.url)('./index.cjs');

export const handler = helper.handler;
export const FunctionError = helper.FunctionError;
