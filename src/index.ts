/**
 * What `require('alyx')` and `import … from 'alyx'` give: the documents of the protocol a
 * function speaks, alyx's error classes with their stable codes, and the table of HTTP statuses
 * those codes answer with. The command line (`npx alyx`) is the way to run alyx.
 */
export type { FunctionErrorBody, FunctionRequest, FunctionResponse, InvocationContext } from './protocol/protocol';
export * from './errors';
export { STATUS_BY_CODE } from './server/status';
export { version } from './cli/version';
