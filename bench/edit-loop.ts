/**
 * Edit-to-new-response time in `alyx dev`: save a source file, then call the function until
 * it answers with the new result. Measured for an interpreted function (node) and for a built
 * one (Go, compiled by its build on every save; a C program where Go is missing).
 *
 *   npm run build && npm run bench:edit
 *
 * Talks to 127.0.0.1 only; every loop is bounded in count and time.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer } from '../__tests__/helpers/server';
import { percentile } from './stats';
import { has } from './commands';

const ROUNDS = Number(process.env.ROUNDS ?? 10);
const ROUND_DEADLINE_MS = 60_000;

interface Subject {
  name: string;
  describe: string;
  files: (version: number) => Record<string, string>;
  source: string;
}

const nodeSubject: Subject = {
  name: 'interpreted',
  describe: 'node index.js (read anew on every invocation)',
  source: 'index.js',
  files: (version) => ({
    'index.js': `process.stdin.resume(); process.stdin.on('end', () => console.log(JSON.stringify({ success: true, output: { version: ${version} } })));\n`,
  }),
};

const goSubject: Subject = {
  name: 'built',
  describe: 'Go, runtime binary: go build on save, then the executable',
  source: 'main.go',
  files: (version) => ({
    'go.mod': 'module example.com/built\n\ngo 1.19\n',
    'manifest.yaml': 'runtime: binary\nbuild:\n  command: go\n  args: [build, -o, bin/app, .]\n  output: bin/app\n  watch: ["*.go"]\n',
    'main.go': `package main\n\nimport (\n\t"io"\n\t"os"\n)\n\nfunc main() {\n\t_, _ = io.ReadAll(os.Stdin)\n\t_, _ = os.Stdout.WriteString(\`{"success": true, "output": {"version": ${version}}}\`)\n}\n`,
  }),
};

const cSubject: Subject = {
  name: 'built',
  describe: 'C, runtime binary: cc on save, then the executable',
  source: 'main.c',
  files: (version) => ({
    'manifest.yaml': 'runtime: binary\nbuild:\n  command: cc\n  args: [-O1, -o, bin/app, main.c]\n  output: bin/app\n  watch: ["*.c"]\n',
    'main.c': `#include <stdio.h>\nint main(void){char b[4096];while(fread(b,1,sizeof b,stdin)>0){}printf("{\\"success\\": true, \\"output\\": {\\"version\\": ${version}}}\\n");return 0;}\n`,
  }),
};

function write(dir: string, files: Record<string, string>): void {
  for (const [file, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), content);
  }
}

async function versionOf(url: string, name: string): Promise<number | null> {
  const response = await fetch(`${url}/api/functions/${name}`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(30_000) });
  const body = (await response.json()) as { output?: { version?: number } };
  return body.output?.version ?? null;
}

/** Saves version `version` and measures until the function answers with it. */
async function measureRound(url: string, dir: string, subject: Subject, version: number): Promise<{ ms: number; calls: number }> {
  const files = subject.files(version);
  write(dir, { [subject.source]: files[subject.source] });
  const saved = performance.now();
  let calls = 0;
  while (performance.now() - saved < ROUND_DEADLINE_MS) {
    calls++;
    const got = await versionOf(url, subject.name);
    if (got === version) return { ms: performance.now() - saved, calls };
  }
  throw new Error(`${subject.name}: version ${version} never answered within ${ROUND_DEADLINE_MS} ms`);
}

async function main(): Promise<void> {
  const built = has('go') ? goSubject : has('cc') ? cSubject : null;
  const subjects = [nodeSubject, ...(built ? [built] : [])];
  const project = fs.mkdtempSync(path.join(os.tmpdir(), 'alyx-bench-edit-'));
  for (const subject of subjects) write(path.join(project, 'functions', subject.name), subject.files(0));

  const server = await startServer(['dev', '-C', project], { timeoutMs: 20_000 });
  await server.waitForLog((entry) => Boolean(entry.watching), 20_000);
  const { url, child } = server;
  try {
    for (const subject of subjects) {
      const deadline = Date.now() + ROUND_DEADLINE_MS; // the first answer includes the startup build
      while ((await versionOf(url, subject.name)) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    }
    console.log(`alyx edit-to-new-response, ${ROUNDS} saves each; ${os.cpus().length} cores, node ${process.version}, NODE_EXTRA_CA_CERTS ${process.env.NODE_EXTRA_CA_CERTS ? 'set' : 'unset'}`);
    console.log('function     what runs                                                   p50 ms   p90 ms   max ms  calls/save');
    for (const subject of subjects) {
      const dir = path.join(project, 'functions', subject.name);
      const rounds: Array<{ ms: number; calls: number }> = [];
      for (let version = 1; version <= ROUNDS; version++) rounds.push(await measureRound(url, dir, subject, version));
      const times = rounds.map((round) => round.ms).sort((a, b) => a - b);
      const calls = rounds.reduce((sum, round) => sum + round.calls, 0) / rounds.length;
      console.log(
        `${subject.name.padEnd(12)} ${subject.describe.padEnd(58)} ${percentile(times, 50).toFixed(0).padStart(7)} ${percentile(times, 90).toFixed(0).padStart(8)} ${times[times.length - 1].toFixed(0).padStart(8)} ${calls.toFixed(1).padStart(11)}`,
      );
    }
    if (!built) console.log('built: SKIPPED (neither go nor cc is installed)');
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    fs.rmSync(project, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
