/**
 * Soak: thousands of invocations at high concurrency against `alyx serve`, mixing healthy
 * functions with crashing, hanging, flooding, memory-hogging and process-leaking ones, plus
 * requests alyx refuses itself. Prints how many requests were sent, answered, answered as
 * expected and lost, how many function processes outlived the load, alyx's peak resident
 * memory, and the latency percentiles. Exits 1 when a request was lost, answered unexpectedly,
 * or a process survived.
 *
 *   npm run build && npm run soak            # SOAK_REQUESTS=2000 SOAK_CONCURRENCY=32 by default
 *
 * Talks to 127.0.0.1 only; bounded by SOAK_REQUESTS and by SOAK_MAX_SECONDS (default 150).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { processesWithEnv, waitFor } from '../__tests__/helpers/processes';
import { cleanEnv } from '../__tests__/helpers/cli';
import { startServer } from '../__tests__/helpers/server';
import { percentile } from './stats';

const REQUESTS = Number(process.env.SOAK_REQUESTS ?? 2000);
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 32);
const MAX_MS = Number(process.env.SOAK_MAX_SECONDS ?? 150) * 1000;
const REQUEST_TIMEOUT_MS = 30_000;
const MARKER = `soak-${randomUUID()}`;
const ADMIN_TOKEN = randomUUID();

/** One kind of request: what is sent, and the status and error code it must get. */
interface Scenario {
  readonly name: string;
  readonly weight: number;
  readonly path: string;
  readonly body: string;
  readonly status: number;
  readonly code?: string;
}

const sh = (body: string, manifest = ''): Record<string, string | { content: string; mode: number }> => ({
  'manifest.yaml': `runtime: binary\nbuild:\n  output: run.sh\n${manifest}`,
  'run.sh': { content: `#!/bin/sh\n${body}\n`, mode: 0o755 },
});

const NODE_ECHO = "let d = ''; process.stdin.on('data', (c) => (d += c)); process.stdin.on('end', () => console.log(JSON.stringify({ success: true, output: JSON.parse(d).input })));\n";

const FUNCTIONS: Record<string, Record<string, string | { content: string; mode: number }>> = {
  'ok-node': { 'index.js': NODE_ECHO },
  'ok-sh': sh(`cat > /dev/null\necho '{"success": true, "output": {"ok": true}}'`),
  'fails-422': sh(`cat > /dev/null\necho '{"success": false, "error": {"code": "BAD_INPUT", "message": "no", "status": 422}}'`),
  crash: sh('cat > /dev/null\necho dying >&2\nexit 3'),
  garbage: sh('cat > /dev/null\necho "this is not json"'),
  flood: sh('cat > /dev/null\nexec yes'),
  hangs: sh('cat > /dev/null\nexec sleep 60', 'timeout: 300ms\n'),
  'stdout-closed': sh('exec 1>&-\ncat > /dev/null\nexit 0'),
  forks: sh(`cat > /dev/null\nsleep 60 &\necho '{"success": true, "output": {"forked": true}}'`),
  'forks-detached': sh(`cat > /dev/null\nsetsid sleep 60 > /dev/null 2>&1 &\necho '{"success": true, "output": {"forked": true}}'`),
  hog: { 'index.js': "const hold = Buffer.alloc(300 * 1024 * 1024, 1); setTimeout(() => console.log(hold.length), 30000);\n", 'manifest.yaml': 'memory: 64mb\n' },
};

const invoke = (name: string): string => `/api/functions/${name}`;
const SCENARIOS: Scenario[] = [
  { name: 'ok-node', weight: 20, path: invoke('ok-node'), body: '{"n": 1}', status: 200 },
  { name: 'ok-sh', weight: 30, path: invoke('ok-sh'), body: '{}', status: 200 },
  { name: 'fails-422', weight: 8, path: invoke('fails-422'), body: '{}', status: 422, code: 'BAD_INPUT' },
  { name: 'crash', weight: 6, path: invoke('crash'), body: '{}', status: 502, code: 'EXECUTION_ERROR' },
  { name: 'garbage', weight: 5, path: invoke('garbage'), body: '{}', status: 502, code: 'EXECUTION_ERROR' },
  { name: 'flood', weight: 4, path: invoke('flood'), body: '{}', status: 502, code: 'OUTPUT_TOO_LARGE' },
  { name: 'hangs', weight: 4, path: invoke('hangs'), body: '{}', status: 504, code: 'TIMEOUT' },
  { name: 'stdout-closed', weight: 3, path: invoke('stdout-closed'), body: '{}', status: 502, code: 'EXECUTION_ERROR' },
  { name: 'forks', weight: 5, path: invoke('forks'), body: '{}', status: 200 },
  { name: 'forks-detached', weight: 4, path: invoke('forks-detached'), body: '{}', status: 200 },
  { name: 'hog', weight: 3, path: invoke('hog'), body: '{}', status: 502, code: 'MEMORY_LIMIT_EXCEEDED' },
  { name: 'not-found', weight: 4, path: invoke('nope'), body: '{}', status: 404, code: 'FUNCTION_NOT_FOUND' },
  { name: 'invalid-json', weight: 4, path: invoke('ok-sh'), body: '{"broken": ', status: 400, code: 'INVALID_JSON' },
];

/** The mix, spread evenly: request i takes slot (i * 37) mod 100 of a 100-slot table. */
const TABLE = SCENARIOS.flatMap((scenario) => Array<Scenario>(scenario.weight).fill(scenario));
if (TABLE.length !== 100) throw new Error(`scenario weights add up to ${TABLE.length}, not 100`);
const scenarioFor = (index: number): Scenario => TABLE[(index * 37) % 100];

function writeProject(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'alyx-soak-'));
  fs.writeFileSync(path.join(root, 'alyx.yaml'), `functions:\n  max_output: 256kb\n  env:\n    SOAK_MARKER: ${MARKER}\n`);
  for (const [name, files] of Object.entries(FUNCTIONS)) {
    for (const [file, entry] of Object.entries(files)) {
      const target = path.join(root, 'functions', name, file);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      if (typeof entry === 'string') fs.writeFileSync(target, entry);
      else fs.writeFileSync(target, entry.content, { mode: entry.mode });
    }
  }
  return root;
}

interface Outcome {
  readonly scenario: Scenario;
  readonly status: number | null;
  readonly code: string | null;
  readonly ms: number;
}

/** One request; never rejects: a request without an HTTP answer has status null. */
function send(agent: http.Agent, url: URL, scenario: Scenario): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const done = (status: number | null, code: string | null): void => resolve({ scenario, status, code, ms: performance.now() - started });
    const req = http.request({ agent, host: url.hostname, port: url.port, path: scenario.path, method: 'POST', timeout: REQUEST_TIMEOUT_MS }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        let code: string | null = null;
        try {
          code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? null;
        } catch {
          // not an envelope: counted as unexpected below
        }
        done(res.statusCode ?? null, code);
      });
      res.on('error', () => done(null, null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => done(null, null));
    req.setHeader('Content-Type', 'application/json');
    req.end(scenario.body);
  });
}

/**
 * Function processes of this run still alive once `timeoutMs` has passed (or sooner, when none
 * are). A reload first ends the warm processes (functions.pool) waiting for the next request.
 */
async function orphansAfter(url: string, timeoutMs: number): Promise<number[]> {
  const reload = await fetch(`${url}/api/admin/reload`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN_TOKEN}` }, signal: AbortSignal.timeout(10_000) });
  if (reload.status !== 200) throw new Error(`POST /api/admin/reload answered ${reload.status}`);
  const marked = (): number[] => processesWithEnv(`SOAK_MARKER=${MARKER}`);
  await waitFor(() => marked().length === 0, timeoutMs, 100);
  return marked();
}

function describeProcess(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '(gone)';
  }
}

/** User plus system CPU seconds a process has used (clock ticks of 10 ms, as on every common Linux). */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function peakRssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

async function main(): Promise<void> {
  const project = writeProject();
  const { url, child } = await startServer(['serve', '-C', project], { env: cleanEnv({ ALYX_ADMIN_TOKEN: ADMIN_TOKEN }), drainLogs: true, timeoutMs: 20_000 });
  const target = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const outcomes: Outcome[] = [];
  let sent = 0;
  const started = performance.now();
  try {
    const worker = async (): Promise<void> => {
      while (sent < REQUESTS && performance.now() - started < MAX_MS) {
        const scenario = scenarioFor(sent++);
        outcomes.push(await send(agent, target, scenario));
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const elapsedS = (performance.now() - started) / 1000;
    const orphans = await orphansAfter(url, 5000);
    const peakMb = peakRssMb(child.pid as number);
    const alyxCpu = cpuSeconds(child.pid as number);

    const answered = outcomes.filter((outcome) => outcome.status !== null);
    const expected = new Set(answered.filter((outcome) => outcome.status === outcome.scenario.status && outcome.code === (outcome.scenario.code ?? null)));
    const lost = sent - answered.length;
    const latencies = answered.map((outcome) => outcome.ms).sort((a, b) => a - b);
    console.log(`alyx soak: ${REQUESTS} requests at concurrency ${CONCURRENCY}; ${os.cpus().length} cores, node ${process.version}, functions.concurrency default (2 x cores), functions.pool default (1)`);
    console.log(`requests sent                ${sent}`);
    console.log(`answered                     ${answered.length}`);
    console.log(`answered as expected         ${expected.size}`);
    console.log(`lost                         ${lost}`);
    console.log(`orphan processes afterwards  ${orphans.length}`);
    console.log(`alyx peak RSS                ${peakMb.toFixed(0)} MB`);
    console.log(`latency p50 / p99            ${percentile(latencies, 50).toFixed(0)} ms / ${percentile(latencies, 99).toFixed(0)} ms`);
    console.log(`duration                     ${elapsedS.toFixed(1)} s (${(answered.length / elapsedS).toFixed(0)} requests/s)`);
    console.log(`alyx CPU time                ${alyxCpu.toFixed(1)} s (${((alyxCpu / answered.length) * 1000).toFixed(1)} ms per request)`);
    console.log('\nscenario          share  status  answered as expected');
    for (const scenario of SCENARIOS) {
      const mine = outcomes.filter((outcome) => outcome.scenario === scenario);
      const good = mine.filter((outcome) => expected.has(outcome)).length;
      console.log(`${scenario.name.padEnd(17)} ${`${scenario.weight}%`.padStart(5)}  ${String(scenario.status).padStart(6)}  ${good}/${mine.length}`);
    }
    for (const pid of orphans) console.log(`orphan: pid ${pid} ${describeProcess(pid)}`);
    const unexpected = answered.filter((outcome) => !expected.has(outcome)).slice(0, 5);
    for (const outcome of unexpected) console.log(`unexpected: ${outcome.scenario.name} answered ${outcome.status} ${outcome.code}`);
    if (lost > 0 || orphans.length > 0 || expected.size !== sent || sent < REQUESTS) process.exitCode = 1;
  } finally {
    agent.destroy();
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const forced = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(forced);
    fs.rmSync(project, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
