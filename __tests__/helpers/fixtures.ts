import { executable, type FixtureTree } from './project';

/** A node function: reads the whole request, then runs `body` with `request` in scope. */
export const nodeFunction = (body: string): string => `
let data = '';
process.stdin.on('data', (chunk) => (data += chunk));
process.stdin.on('end', () => {
  const request = JSON.parse(data);
  ${body}
});
`;

const respond = (response: string): string => `console.log(JSON.stringify(${response}));`;

/**
 * Functions for the server tests, one per row of the SPEC §6 status table and then some.
 * `slow` writes its pid to started-<input.tag>.pid when it starts, so tests can wait for it.
 */
export const serverFunctions: FixtureTree = {
  'functions/echo/index.js': nodeFunction(respond('{ success: true, output: { input: request.input, mode: process.env.ALYX_MODE, admin_token: process.env.ALYX_ADMIN_TOKEN ?? null } }')),
  'functions/fail-default/index.js': nodeFunction(respond("{ success: false, error: 'it did not work' }")),
  'functions/fail-422/index.js': nodeFunction(respond("{ success: false, error: { code: 'UNPROCESSABLE', message: 'bad name', status: 422 } }")),
  'functions/crash/index.js': nodeFunction("console.error('secret stack detail'); process.exit(1);"),
  'functions/big/index.js': nodeFunction(respond("{ success: true, output: 'x'.repeat(256 * 1024) }")),
  'functions/hog/index.js': nodeFunction("const hold = Buffer.alloc(300 * 1024 * 1024, 1); setTimeout(() => console.log(hold.length), 20000);"),
  'functions/hog/manifest.yaml': 'memory: 64mb\n',
  'functions/slow/index.js': nodeFunction(`
    require('node:fs').writeFileSync('started-' + (request.input.tag || 'x') + '.pid', String(process.pid));
    setTimeout(() => console.log(JSON.stringify({ success: true, output: { slept: Number(request.input.ms) } })), Number(request.input.ms));`),
  'functions/times-out/index.js': nodeFunction('setTimeout(() => {}, 60000);'),
  'functions/times-out/manifest.yaml': 'timeout: 500ms\n',
  'functions/built/index.js': nodeFunction(respond("{ success: true, output: { from: 'source' } }")),
  'functions/built/manifest.yaml': 'build:\n  command: sh\n  args: [-c, "exit 0"]\n  output: dist/run.sh\n',
};

/** The `built` function's output, once "built": an executable run directly in production. */
export const builtOutput: FixtureTree = {
  'functions/built/dist/run.sh': executable('#!/bin/sh\ncat > /dev/null\necho \'{"success": true, "output": {"from": "output"}}\'\n'),
};
