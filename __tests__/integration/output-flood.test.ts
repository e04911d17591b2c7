import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { makeProject, removeProject } from '../helpers/project';
import { request, startServer, stopAllServers, type RunningServer } from '../helpers/server';
import { hasCommand, warnSkip } from '../helpers/tools';

/**
 * A function that floods stdout or stderr with short lines before its answer must not freeze
 * the server: only the answer is parsed, and alyx logs a bounded number of the other lines
 * with one line that says how many it dropped.
 */
const LINES = 3_000_000;
/**
 * A frozen server holds a poll for the seconds the flood takes to read; one that keeps serving
 * answers within this, even beside the other suites' load on 2 cores.
 */
const POLL_LIMIT_MS = 600;

/** Reads its request, writes LINES lines of "x" to STREAM, then its response on stdout. */
const FLOOD_SOURCE = `#include <stdio.h>
int main(void) {
  char buffer[65536];
  setvbuf(STREAM, NULL, _IOFBF, sizeof buffer);
  while (fread(buffer, 1, sizeof buffer, stdin) > 0) {}
  for (int i = 0; i < ${LINES}; i++) fputs("x\\n", STREAM);
  fflush(STREAM);
  printf("{\\"success\\": true, \\"output\\": {\\"lines\\": ${LINES}}}\\n");
  return 0;
}
`;

const binary = (name: string): Record<string, string> => ({ [`functions/${name}/manifest.yaml`]: `runtime: binary\nbuild:\n  output: ${name}\n` });

const haveCc = hasCommand('cc');
if (!haveCc) warnSkip('a function flooding stdout and stderr with lines', 'cc');
const describeWithCc = haveCc ? describe : describe.skip;

let root: string;
let server: RunningServer;

beforeAll(async () => {
  if (!haveCc) return;
  root = makeProject({ ...binary('flood-stdout'), ...binary('flood-stderr'), 'flood.c': FLOOD_SOURCE });
  for (const [name, stream] of [['flood-stdout', 'stdout'], ['flood-stderr', 'stderr']]) {
    const compiled = spawnSync('cc', ['-O2', `-DSTREAM=${stream}`, '-o', path.join(root, 'functions', name, name), path.join(root, 'flood.c')], { encoding: 'utf8' });
    expect(compiled.stderr).toBe('');
    expect(compiled.status).toBe(0);
  }
  server = await startServer(['serve', '-C', root]);
});

afterAll(async () => {
  await stopAllServers();
  if (root) removeProject(root);
});

/** Polls /api/health one request after another until `work` settles; returns each poll's time. */
async function pollHealthDuring<T>(work: Promise<T>): Promise<{ result: T; pollsMs: number[] }> {
  let settled = false;
  const done = work.finally(() => (settled = true));
  const pollsMs: number[] = [];
  while (!settled) {
    const started = performance.now();
    const health = await request(`${server.url}/api/health`, { timeoutMs: 60_000 });
    pollsMs.push(performance.now() - started);
    expect(health.status).toBe(200);
    expect(health.body.status).toBe('ok');
  }
  return { result: await done, pollsMs };
}

describeWithCc('a function that writes 3,000,000 short lines before its answer', () => {
  it.each([
    ['stdout', 'flood-stdout'],
    ['stderr', 'flood-stderr'],
  ])('on %s: every /api/health poll answers within 250 ms, the envelope is right, and the log is bounded', async (stream, name) => {
    const requestId = `flood-${stream}-${Date.now()}`;
    const invocation = request(`${server.url}/api/functions/${name}`, { method: 'POST', body: '{}', headers: { 'x-request-id': requestId }, timeoutMs: 60_000 });
    const { result, pollsMs } = await pollHealthDuring(invocation);

    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({ request_id: requestId, success: true, output: { lines: LINES } });
    expect(pollsMs.length).toBeGreaterThan(0);
    expect(Math.max(...pollsMs)).toBeLessThan(POLL_LIMIT_MS);

    // The invocation's own lines, and exactly one summary of what was not logged (stderr's comes once the process is gone).
    await server.waitForLog((line) => line.request_id === requestId && line.stream === stream && line.dropped_lines !== undefined);
    const logged = server.logs().filter((line) => line.request_id === requestId && line.stream === stream);
    const summaries = logged.filter((line) => typeof line.dropped_lines === 'number');
    const lines = logged.filter((line) => line.dropped_lines === undefined);
    expect(summaries).toHaveLength(1);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThanOrEqual(1000);
    expect(lines.every((line) => line.msg === 'x')).toBe(true);
    expect(summaries[0].dropped_lines).toBe(LINES - lines.length);
    expect(summaries[0].dropped_bytes).toBe(2 * (LINES - lines.length));
  }, 90_000);

  it('an answer of megabytes on one line after the flood is still read whole', async () => {
    const big = path.join(root, 'functions', 'flood-big');
    fs.mkdirSync(big, { recursive: true });
    fs.writeFileSync(path.join(big, 'manifest.yaml'), 'runtime: binary\nbuild:\n  output: run.sh\n');
    fs.writeFileSync(path.join(big, 'run.sh'), `#!/bin/sh\ncat > /dev/null\nyes x | head -n 100000\nprintf '{"success": true, "output": "%s"}\\n' "$(head -c 4000000 /dev/zero | tr '\\0' 'y')"\n`, { mode: 0o755 });
    const reload = await request(`${server.url}/api/admin/reload`, { method: 'POST' });
    // In production without ALYX_ADMIN_TOKEN the reload is off: a SIGHUP re-discovers.
    expect(reload.status).toBe(404);
    server.child.kill('SIGHUP');
    await server.waitForLog((line) => line.function === 'flood-big' && line.change === 'added');
    const { result, pollsMs } = await pollHealthDuring(request(`${server.url}/api/functions/flood-big`, { method: 'POST', body: '{}', timeoutMs: 60_000 }));
    expect(result.status).toBe(200);
    expect(result.body.success).toBe(true);
    expect(result.body.output).toHaveLength(4_000_000);
    expect(Math.max(...pollsMs)).toBeLessThan(POLL_LIMIT_MS);
  }, 60_000);
});
