/**
 * What alyx adds to an invocation, against the floor: spawning the same process with the same
 * request from a minimal Node script (bench/floor-server.cjs). For a trivial node, python and
 * directly executed binary function (and deno and bun ones where those are on PATH), at
 * concurrency 1 and 8 (closed loop, autocannon), and at
 * concurrency 1 paced slower than a process starts (where a warm pool
 * hides start-up), it measures requests/s, p50 and p99 of:
 *   (a) the floor, (b) `alyx serve` without the pool, (c) `alyx serve` with the pool.
 * It then profiles alyx (b) serving the binary function at concurrency 8, for the share of
 * its CPU time spent in spawn(), and compares ways of spawning from Node (bench/spawn-cost.cjs;
 * posix_spawn through alyx's Node-API addon where the build made it).
 *
 *   npm run bench                  # builds, then runs for about 4 minutes (6 with deno and bun)
 *   BENCH_SECONDS=2 npm run bench  # shorter runs
 *   BENCH_FUNCTIONS=node,binary    # only these functions
 *   ALYX_BIN=/other/bin/alyx.js    # measure another build of alyx against the same floor
 *   BENCH_COMPARE=/old/bin/alyx.js # this build and another, taking turns in every cell
 *
 * Talks to 127.0.0.1 only; every run is bounded in time.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { medianDifference, percentile } from './stats';
import { has } from './commands';
import { ALYX, closedLoopInTurn, commandsOf, fmt, freePort, loadAverage, processCpuMs, ROUNDS, serveAlyx, signed, startServer, stop, summarize, WARMUP_SECONDS, type Load, type Measured, type Server } from './turns';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
/** Slower than a node process starts here (about 120 ms with NODE_EXTRA_CA_CERTS), so a warm process can be ready for each request. */
const PACED_RATE = 4;
/** (a), (b) and (c): paced requests go to them in turn. */
const CONTENDERS = 3;
/** Warm processes per function for (c): enough for concurrency 8. */
const POOL_SIZE = 8;
const FLOOR = path.resolve(__dirname, 'floor-server.cjs');
const SPAWN_COST = path.resolve(__dirname, 'spawn-cost.cjs');
const GO_EXEC_SERVER = path.resolve(__dirname, 'go-exec-server');
/** Another build of alyx to measure in turns with this one (its bin/alyx.js). */
const COMPARE = process.env.BENCH_COMPARE ? path.resolve(process.env.BENCH_COMPARE) : null;
const SPAWN_COST_PROCESSES = 200;

const LOADS: Load[] = [
  { label: '1', connections: 1 },
  { label: '8', connections: 8 },
  { label: `1 every ${Math.round((1000 * CONTENDERS) / PACED_RATE)} ms`, connections: 1, rate: PACED_RATE },
];

const C_PROGRAM = `#include <stdio.h>
int main(void) {
  char buffer[4096];
  while (fread(buffer, 1, sizeof buffer, stdin) > 0) {}
  fputs("{\\"success\\": true, \\"output\\": {\\"hello\\": \\"world\\"}}\\n", stdout);
  return 0;
}
`;

const GO_PROGRAM = `package main

import (
\t"io"
\t"os"
)

func main() {
\t_, _ = io.ReadAll(os.Stdin)
\t_, _ = os.Stdout.WriteString("{\\"success\\": true, \\"output\\": {\\"hello\\": \\"world\\"}}\\n")
}
`;

const NODE_FUNCTION =
  "let data = '';\nprocess.stdin.on('data', (chunk) => (data += chunk));\nprocess.stdin.on('end', () => {\n  JSON.parse(data);\n  console.log(JSON.stringify({ success: true, output: { hello: 'world' } }));\n});\n";

const DENO_FUNCTION =
  "JSON.parse(await new Response(Deno.stdin.readable).text());\nconsole.log(JSON.stringify({ success: true, output: { hello: 'world' } }));\n";

/**
 * The trivial functions: node, python and a binary (compiled with cc, or go where cc is
 * missing), which the issue's table covers, then deno and bun where they are installed.
 */
function writeProject(): { project: string; names: string[] } {
  const project = fs.mkdtempSync(path.join(os.tmpdir(), 'alyx-bench-floor-'));
  const write = (file: string, content: string, mode = 0o644): void => {
    fs.mkdirSync(path.dirname(path.join(project, file)), { recursive: true });
    fs.writeFileSync(path.join(project, file), content, { mode });
  };
  write('functions/node/index.js', NODE_FUNCTION);
  write('functions/python/index.py', 'import json, sys\njson.load(sys.stdin)\nprint(json.dumps({"success": True, "output": {"hello": "world"}}))\n');
  const names = ['node', 'python'];
  const binaryDir = path.join(project, 'functions', 'binary');
  write('functions/binary/manifest.yaml', 'runtime: binary\nbuild:\n  output: bin/app\n');
  fs.mkdirSync(path.join(binaryDir, 'bin'), { recursive: true });
  if (has('cc')) {
    write('functions/binary/main.c', C_PROGRAM);
    spawnSync('cc', ['-O2', '-o', 'bin/app', 'main.c'], { cwd: binaryDir, stdio: 'inherit' });
  } else if (has('go')) {
    write('functions/binary/main.go', GO_PROGRAM);
    write('functions/binary/go.mod', 'module example.com/binary\n\ngo 1.19\n');
    spawnSync('go', ['build', '-o', 'bin/app', '.'], { cwd: binaryDir, stdio: 'inherit' });
  }
  if (fs.existsSync(path.join(binaryDir, 'bin', 'app'))) names.push('binary');
  else console.log('binary: SKIPPED (neither cc nor go is installed)');
  // deno and bun run the same kind of file a build would leave: plain JavaScript.
  for (const [runtime, source] of [
    ['deno', DENO_FUNCTION],
    ['bun', NODE_FUNCTION],
  ] as const) {
    if (!has(runtime)) {
      console.log(`${runtime}: SKIPPED (${runtime} is not on PATH; .ci/run installs it under ~/.cache/alyx-ci/tools/node_modules/.bin)`);
      continue;
    }
    write(`functions/${runtime}/index.js`, source);
    write(`functions/${runtime}/manifest.yaml`, `runtime: ${runtime}\n`);
    names.push(runtime);
  }
  const only = process.env.BENCH_FUNCTIONS?.split(',');
  return { project, names: only ? names.filter((name) => only.includes(name)) : names };
}

async function startFloor(commands: Record<string, { command: string[]; cwd: string }>): Promise<Server> {
  const port = await freePort();
  return startServer([FLOOR, JSON.stringify(commands), String(port)], process.env, port, (base, name) => `${base}/${name}`, '/no-such-function');
}

/**
 * The fork-per-call Go server (bench/go-exec-server), built with the Go toolchain into a
 * temporary folder; null where go is not installed.
 */
async function startGoExecServer(commands: Record<string, { command: string[]; cwd: string }>, buildDir: string): Promise<Server | null> {
  if (!has('go')) return null;
  const program = path.join(buildDir, 'go-exec-server');
  const built = spawnSync('go', ['build', '-o', program, '.'], { cwd: GO_EXEC_SERVER, stdio: 'inherit' });
  if (built.status !== 0) throw new Error('go build of bench/go-exec-server failed');
  const port = await freePort();
  return startServer([JSON.stringify(commands), String(port)], process.env, port, (base, name) => `${base}/${name}`, '/no-such-function', program);
}

function startAlyx(project: string, pool: number, nodeOptions: string[] = [], bin = ALYX): Promise<Server> {
  return serveAlyx(project, { ALYX_FUNCTIONS_POOL: String(pool) }, nodeOptions, bin);
}

const pacedAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/**
 * One request on a kept-alive connection; resolves with its latency in ms. A POST runs the
 * function and fails (Infinity) unless answered 200; a GET counts whatever its status.
 */
function request(url: string, method: 'POST' | 'GET'): Promise<number> {
  return new Promise((resolve) => {
    const started = performance.now();
    const post = method === 'POST';
    const options = { method, agent: pacedAgent, timeout: 30_000, ...(post ? { headers: { 'content-type': 'application/json' } } : {}) };
    const req = http.request(url, options, (res) => {
      res.resume();
      res.on('end', () => resolve(!post || res.statusCode === 200 ? performance.now() - started : Infinity));
    });
    req.on('error', () => resolve(Infinity));
    req.on('timeout', () => req.destroy());
    req.end(post ? '{"name": "bench"}' : undefined);
  });
}

/**
 * One request every 1/rate s, evenly spaced, to the servers in turn (a, b, c, a, ...), so each
 * gets `count` of them, one every (servers)/rate s, and a change in the machine's load hits them
 * alike (autocannon's overallRate sends each second's requests back to back, which would leave
 * a warm pool one process for a burst). The first request to each is a warm-up and is not
 * counted; `onMeasuring` runs once the warm-ups are done. Latencies per server, Infinity for a failure.
 */
async function inTurn(labels: string[], rate: number, count: number, send: (label: string) => Promise<number>, onMeasuring = (): void => undefined): Promise<Map<string, number[]>> {
  const latencies = new Map(labels.map((label) => [label, [] as number[]]));
  const start = performance.now();
  for (let i = 0; i < labels.length * (count + 1); i++) {
    const label = labels[i % labels.length];
    if (i === labels.length) onMeasuring();
    const wait = start + (i * 1000) / rate - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const ms = await send(label);
    if (i >= labels.length) latencies.get(label)?.push(ms);
  }
  return latencies;
}

/** The round trip of a request that runs nothing, to a server that sat idle in between: on a virtual machine, waking an idle process is part of every answer. */
async function idleRoundTrips(servers: Record<string, Server>, rate: number, count: number): Promise<Record<string, number>> {
  const latencies = await inTurn(Object.keys(servers), rate, count, (label) => request(servers[label].idleUrl, 'GET'));
  return Object.fromEntries([...latencies].map(([label, all]) => [label, percentile(all.filter(Number.isFinite).sort((x, y) => x - y), 50)]));
}

/** The paced row: `rate` x `seconds` invocations per server, in turn (see inTurn). */
async function pacedInTurn(servers: Record<string, Server>, name: string, rate: number, seconds: number): Promise<Record<string, Measured>> {
  const labels = Object.keys(servers);
  const cpuBefore = new Map<string, number>();
  const onMeasuring = (): void => labels.forEach((label) => cpuBefore.set(label, processCpuMs(servers[label].child.pid as number)));
  const latencies = await inTurn(labels, rate, rate * seconds, (label) => request(servers[label].url(name), 'POST'), onMeasuring);
  const measured: Record<string, Measured> = {};
  for (const [label, all] of latencies) {
    const answered = all.filter(Number.isFinite);
    const cpuMs = processCpuMs(servers[label].child.pid as number) - (cpuBefore.get(label) ?? 0);
    measured[label] = summarize(answered, rate / labels.length, all.length - answered.length, cpuMs);
  }
  return measured;
}

/** Share of alyx's sampled CPU time inside spawn() (node's, or alyx's posix_spawn), from a V8 CPU profile. */
function spawnShare(profileFile: string): { spawnMs: number; busyMs: number } {
  interface ProfileNode {
    id: number;
    callFrame: { functionName: string; url: string };
    children?: number[];
  }
  const profile = JSON.parse(fs.readFileSync(profileFile, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, index) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0)));
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const inclusive = (node: ProfileNode): number => (selfUs.get(node.id) ?? 0) + (node.children ?? []).reduce((sum, id) => sum + inclusive(byId.get(id) as ProfileNode), 0);
  let spawnUs = 0;
  let busyUs = 0;
  const walk = (node: ProfileNode, insideSpawn: boolean): void => {
    const { functionName, url } = node.callFrame;
    // Node's spawn, or alyx's posix_spawn one: each with its three stdio streams.
    const isSpawn = !insideSpawn && ((functionName === 'ChildProcess.spawn' && url === 'node:internal/child_process') || (functionName === 'startNativeProcess' && url.endsWith('/native-process.js')));
    if (isSpawn) spawnUs += inclusive(node);
    if (node.callFrame.functionName !== '(idle)') busyUs += selfUs.get(node.id) ?? 0;
    for (const id of node.children ?? []) walk(byId.get(id) as ProfileNode, insideSpawn || isSpawn);
  };
  walk(profile.nodes[0], false);
  return { spawnMs: spawnUs / 1000, busyMs: busyUs / 1000 };
}

function row(name: string, load: Load, a: Measured, b: Measured, c: Measured): string {
  const cells = [
    name,
    load.label,
    ...[a, b, c].flatMap((m) => [fmt(m.rps), fmt(m.p50), fmt(m.p99)]),
    `${fmt(b.rps / a.rps, 2)} / ${fmt(b.p50 / a.p50, 2)}`,
    `${fmt(c.rps / a.rps, 2)} / ${fmt(c.p50 / a.p50, 2)}`,
  ];
  const errors = a.errors + b.errors + c.errors;
  return `| ${cells.join(' | ')} |${errors > 0 ? ` (${errors} errors)` : ''}`;
}

async function main(): Promise<void> {
  const { project, names } = writeProject();
  const started = Date.now();
  const loadAtStart = loadAverage();
  const servers: Server[] = [];
  try {
    const commands = commandsOf(project);
    const results = new Map<string, Measured>();
    const key = (server: string, name: string, load: Load): string => `${server}|${name}|${load.label}`;
    const measuredOf = (server: string, name: string, load: Load): Measured => results.get(key(server, name, load)) as Measured;
    // All three run side by side (an idle server costs nothing), and each cell measures them
    // in turn, so a change in the machine's load hits all three alike.
    const contenders: Record<string, Server> = { a: await startFloor(commands), b: await startAlyx(project, 0), c: await startAlyx(project, POOL_SIZE) };
    // Another build (BENCH_COMPARE=…/bin/alyx.js) takes its turns too: (d) without, (e) with the pool.
    if (COMPARE) Object.assign(contenders, { d: await startAlyx(project, 0, [], COMPARE), e: await startAlyx(project, POOL_SIZE, [], COMPARE) });
    servers.push(...Object.values(contenders));
    for (const name of names) {
      for (const load of LOADS) {
        if (load.rate) {
          const measured = await pacedInTurn(contenders, name, load.rate, SECONDS);
          for (const [label, each] of Object.entries(measured)) results.set(key(label, name, load), each);
          continue;
        }
        const measured = await closedLoopInTurn(contenders, name, load, SECONDS);
        for (const [label, each] of Object.entries(measured)) results.set(key(label, name, load), each);
      }
    }
    const idle = await idleRoundTrips({ a: contenders.a, b: contenders.b }, PACED_RATE, PACED_RATE * SECONDS);
    await Promise.all(Object.values(contenders).map(stop));

    // The binary against a fork-per-call Go server, as OpenFaaS's classic watchdog is.
    let goTable = '';
    if (names.includes('binary')) {
      const buildDir = fs.mkdtempSync(path.join(os.tmpdir(), 'alyx-bench-go-'));
      try {
        const go = await startGoExecServer(commands, buildDir);
        if (!go) goTable = 'binary against Go os/exec: SKIPPED (go is not installed)';
        else {
          const alyx = await startAlyx(project, 0);
          servers.push(go, alyx);
          const lines = [
            'binary: alyx (b) against a fork-per-call Go server (bench/go-exec-server: os/exec per request, as the classic OpenFaaS watchdog), in turn:',
            '',
            '| concurrency | (g) Go req/s | p50 ms | (b) alyx req/s | p50 ms | (b)/(g) req/s | (b) − (g) p50 ms | 95% interval |',
            '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
          ];
          for (const load of LOADS.filter((each) => !each.rate)) {
            const { g, b } = await closedLoopInTurn({ g: go, b: alyx }, 'binary', load, SECONDS);
            const { difference, low, high } = medianDifference(g.latencies, b.latencies);
            const ms = (value: number): string => `${value > 0 ? '+' : ''}${fmt(value, 2)}`;
            lines.push(`| ${load.label} | ${fmt(g.rps)} | ${fmt(g.p50, 2)} | ${fmt(b.rps)} | ${fmt(b.p50, 2)} | ${fmt(b.rps / g.rps, 2)} | ${ms(difference)} | ${ms(low)} to ${ms(high)} |`);
          }
          goTable = lines.join('\n');
          await Promise.all([stop(go), stop(alyx)]);
        }
      } finally {
        fs.rmSync(buildDir, { recursive: true, force: true });
      }
    }

    let profileLine = '';
    if (names.includes('binary')) {
      const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'alyx-bench-profile-'));
      const server = await startAlyx(project, 0, ['--cpu-prof', `--cpu-prof-dir=${profileDir}`]);
      servers.push(server);
      const { b: measured } = await closedLoopInTurn({ b: server }, 'binary', LOADS[1], SECONDS);
      await stop(server);
      const profile = fs.readdirSync(profileDir).find((file) => file.endsWith('.cpuprofile'));
      if (profile) {
        const { spawnMs, busyMs } = spawnShare(path.join(profileDir, profile));
        const requests = measured.rps * (SECONDS + WARMUP_SECONDS);
        profileLine = `alyx (b) serving binary at concurrency 8 under --cpu-prof: ${fmt(measured.rps)} req/s; spawn() ${fmt(spawnMs, 0)} ms of ${fmt(busyMs, 0)} ms busy main-thread time (${fmt((100 * spawnMs) / busyMs, 0)}%), ${fmt(spawnMs / requests, 2)} ms per invocation`;
      }
      fs.rmSync(profileDir, { recursive: true, force: true });
    }

    let spawnCost = '';
    if (names.includes('binary')) {
      const binary = path.join(project, 'functions', 'binary', 'bin', 'app');
      const measured = spawnSync(process.execPath, [SPAWN_COST, binary, String(SPAWN_COST_PROCESSES)], { encoding: 'utf8', timeout: 120_000 });
      const rows = measured.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, number | string>);
      spawnCost = [
        `Starting the binary ${SPAWN_COST_PROCESSES} times, one at a time, from a Node process (bench/spawn-cost.cjs), per process:`,
        '',
        '| way | spawn() holds the JS thread, ms | CPU of the Node process, ms | wall, ms |',
        '| --- | ---: | ---: | ---: |',
        ...rows.map((row) => `| ${row.way} | ${row.spawn_call_ms} | ${row.cpu_ms} | ${row.wall_ms} |`),
        ...(rows.some((row) => String(row.way).startsWith('posix_spawn')) ? [] : ['', "posix_spawn (native addon): SKIPPED (not built: npm run build needs cc and node's headers for it)"]),
      ].join('\n');
    }

    console.log(
      `\n${os.availableParallelism()} cores (${os.cpus()[0]?.model.trim()}), node ${process.version}, NODE_EXTRA_CA_CERTS ${process.env.NODE_EXTRA_CA_CERTS ? 'set (node functions pay it in every column alike)' : 'unset'}, load average (1/5/15 min) at start ${loadAtStart}, at end ${loadAverage()}; closed loop: ${SECONDS} s per server and cell, in up to ${ROUNDS} slices taking turns (each at least 20 typical requests), after ${WARMUP_SECONDS} s warm-up; paced: a request every ${1000 / PACED_RATE} ms to (a), (b), (c) in turn, ${PACED_RATE * SECONDS} each after one to warm up; pool (c): functions.pool ${POOL_SIZE}; alyx ${path.relative(process.cwd(), ALYX) || ALYX}\n`,
    );
    console.log('| function | concurrency | (a) floor req/s | p50 ms | p99 ms | (b) alyx req/s | p50 ms | p99 ms | (c) alyx + pool req/s | p50 ms | p99 ms | (b)/(a) req/s / p50 | (c)/(a) req/s / p50 |');
    console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const name of names) {
      for (const load of LOADS) {
        console.log(row(name, load, measuredOf('a', name, load), measuredOf('b', name, load), measuredOf('c', name, load)));
      }
    }
    console.log('\np50 over the floor\'s, ms, with a 95% bootstrap interval (an interval that holds 0: this run cannot tell the two apart):\n');
    console.log('| function | concurrency | (b) alyx − (a) | 95% interval | (c) alyx + pool − (a) | 95% interval |');
    console.log('| --- | --- | ---: | ---: | ---: | ---: |');
    for (const name of names) {
      for (const load of LOADS) {
        const floor = measuredOf('a', name, load);
        const cells = [measuredOf('b', name, load), measuredOf('c', name, load)].flatMap((m) => {
          const { difference, low, high } = medianDifference(floor.latencies, m.latencies);
          return [signed(difference), `${signed(low)} to ${signed(high)}`];
        });
        console.log(`| ${name} | ${load.label} | ${cells.join(' | ')} |`);
      }
    }
    console.log('\nCPU time of the server process itself per request (the functions it starts excluded), ms:\n');
    console.log('| function | concurrency | (a) floor | (b) alyx | (c) alyx + pool |');
    console.log('| --- | --- | ---: | ---: | ---: |');
    for (const name of names) {
      for (const load of LOADS) {
        const cpu = ['a', 'b', 'c'].map((label) => fmt(measuredOf(label, name, load).serverCpuMs, 2));
        console.log(`| ${name} | ${load.label} | ${cpu.join(' | ')} |`);
      }
    }
    console.log(
      `\nRound trip of a request that runs no function, one every ${(2 * 1000) / PACED_RATE} ms to each server on a kept-alive connection, p50: (a) floor ${fmt(idle.a)} ms (its 404), (b) alyx ${fmt(idle.b)} ms (GET /api/health)`,
    );
    if (COMPARE) {
      console.log(`\nThis build against ${COMPARE}, in turns (p50 difference with a 95% bootstrap interval; below 0: this build is faster):\n`);
      console.log('| function | concurrency | other req/s | this req/s | this/other | p50 this − other, ms | 95% interval | + pool: other req/s | this req/s | this − other p50, ms |');
      console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
      for (const name of names) {
        for (const load of LOADS) {
          const [b, c, d, e] = ['b', 'c', 'd', 'e'].map((label) => measuredOf(label, name, load));
          const plain = medianDifference(d.latencies, b.latencies);
          const pooled = medianDifference(e.latencies, c.latencies);
          console.log(`| ${name} | ${load.label} | ${fmt(d.rps)} | ${fmt(b.rps)} | ${fmt(b.rps / d.rps, 2)} | ${signed(plain.difference, 2)} | ${signed(plain.low, 2)} to ${signed(plain.high, 2)} | ${fmt(e.rps)} | ${fmt(c.rps)} | ${signed(pooled.difference, 2)} |`);
        }
      }
    }
    if (goTable) console.log(`\n${goTable}`);
    if (profileLine) console.log(`\n${profileLine}`);
    if (spawnCost) console.log(`\n${spawnCost}`);
    console.log(`\n(${fmt((Date.now() - started) / 1000, 0)} s in all)`);
  } finally {
    await Promise.all(servers.map(stop));
    fs.rmSync(project, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
