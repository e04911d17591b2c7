/**
 * What alyx/handler adds to a node function's start: the same trivial function written plainly
 * (it reads stdin and writes its response itself) and with the helper, as CommonJS and as ESM,
 * each run one-shot as alyx runs it (node's preload, ALYX_FUNCTION, the request on stdin). A
 * third variant is the plain function importing an empty package through an `exports` map: node
 * loads its package resolver on first use, which any function that imports a package pays,
 * helper or not. The variants take turns, run after run, so that a slower stretch of the machine
 * hits them alike. Prints the medians of each: wall time from spawn to exit, CPU time, and the
 * time from before the entry loads to the response's write (which leaves out node's own start,
 * the noisiest part); then the differences of those medians with their 95% intervals.
 *
 *   npx tsx bench/helper-start.ts             # 30 runs of each
 *   BENCH_RUNS=100 npx tsx bench/helper-start.ts
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { medianDifference, percentile } from './stats';

const RUNS = Math.min(Math.max(Number(process.env.BENCH_RUNS ?? 30), 5), 500);
const WARMUP_RUNS = 3;
const RUN_DEADLINE_MS = 10_000;
const REPO = path.resolve(__dirname, '..');
const PRELOAD = path.join(REPO, 'shims', 'node-preload.cjs');
const REQUEST = JSON.stringify({
  request_id: 'bench',
  function: 'bench',
  input: { name: 'World' },
  context: { auth: null, env: {}, alyx_url: 'http://127.0.0.1:1', internal_token: '0'.repeat(64) },
});

const PLAIN = `let data = '';
process.stdin.on('data', (chunk) => (data += chunk));
process.stdin.on('end', () => {
  const request = JSON.parse(data);
  const output = { message: 'Hello, ' + request.input.name + '!' };
  process.stdout.write(JSON.stringify({ request_id: request.request_id, success: true, output, logs: [] }) + '\\n');
});
`;

const FILES: Record<string, string> = {
  'plain.cjs': PLAIN,
  'package.cjs': `require('empty-package/sub');\n${PLAIN}`,
  'helper.cjs': `const { handler } = require('alyx/handler');
module.exports = handler(async (input) => ({ message: 'Hello, ' + input.name + '!' }));
`,
  'plain.mjs': PLAIN,
  'package.mjs': `import 'empty-package/sub';\n${PLAIN}`,
  'helper.mjs': `import { handler } from 'alyx/handler';
export default handler(async (input) => ({ message: 'Hello, ' + input.name + '!' }));
`,
  'node_modules/empty-package/package.json': JSON.stringify({ name: 'empty-package', exports: { './sub': { import: './sub.mjs', require: './sub.cjs' } } }),
  'node_modules/empty-package/sub.cjs': 'exports.empty = true;\n',
  'node_modules/empty-package/sub.mjs': 'export const empty = true;\n',
  // Loaded into every variant alike, before its entry: on stderr as the process exits, its CPU
  // time, and the time from here to its first write to stdout (the response), which leaves out
  // node's own start, the noisiest part of the wall time.
  'measure.cjs': `const started = process.hrtime.bigint();
let answered = null;
const write = process.stdout.write;
process.stdout.write = function (...args) {
  answered ??= process.hrtime.bigint();
  return write.apply(this, args);
};
process.on('exit', () => {
  const { user, system } = process.cpuUsage();
  process.stderr.write('cpu ' + (user + system) / 1000 + '\\nanswer ' + Number(answered - started) / 1e6 + '\\n');
});
`,
};
const VARIANTS = ['plain.cjs', 'package.cjs', 'helper.cjs', 'plain.mjs', 'package.mjs', 'helper.mjs'];

interface Sample {
  wallMs: number;
  cpuMs: number;
  /** From before the entry loads to the response's write. */
  answerMs: number;
}

/** One run; throws unless the function answered. */
function runOnce(dir: string, file: string): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, ['--require', PRELOAD, '--require', './measure.cjs', file], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', HOME: os.homedir(), ALYX_MODE: 'production', ALYX_FUNCTION: 'bench' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} did not finish within ${RUN_DEADLINE_MS} ms`));
    }, RUN_DEADLINE_MS);
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
      const cpu = /^cpu (\S+)$/m.exec(stderr);
      const answer = /^answer (\S+)$/m.exec(stderr);
      if (code !== 0 || !stdout.includes('"success":true') || !cpu || !answer) reject(new Error(`${file} exited ${code}: ${stdout}${stderr}`));
      else resolve({ wallMs, cpuMs: Number(cpu[1]), answerMs: Number(answer[1]) });
    });
    child.stdin.end(REQUEST);
  });
}

const median = (values: number[]): number => percentile(Float64Array.from(values).sort(), 50);

async function main(): Promise<void> {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'alyx-helper-start-')));
  try {
    fs.mkdirSync(path.join(dir, 'node_modules', 'empty-package'), { recursive: true });
    fs.symlinkSync(REPO, path.join(dir, 'node_modules', 'alyx'));
    for (const [file, text] of Object.entries(FILES)) fs.writeFileSync(path.join(dir, file), text);
    const samples = new Map<string, Sample[]>(VARIANTS.map((file) => [file, []]));
    for (let run = 0; run < WARMUP_RUNS + RUNS; run++) {
      // Each round starts with a different variant, so that none always runs first.
      for (let i = 0; i < VARIANTS.length; i++) {
        const file = VARIANTS[(run + i) % VARIANTS.length];
        const sample = await runOnce(dir, file);
        if (run >= WARMUP_RUNS) samples.get(file)?.push(sample);
      }
    }
    const of = (file: string, key: keyof Sample): number[] => (samples.get(file) ?? []).map((sample) => sample[key]);
    const interval = (base: string, file: string, key: keyof Sample): string => {
      const { difference, low, high } = medianDifference(of(base, key), of(file, key));
      return `${difference.toFixed(2)} ms [95% ${low.toFixed(2)}, ${high.toFixed(2)}]`;
    };
    console.log(`node ${process.version}, ${RUNS} runs of each, taking turns. Medians of: wall time from spawn to exit; CPU time; time from before the entry loads to the response`);
    for (const file of VARIANTS) {
      console.log(`  ${file.padEnd(12)} wall ${median(of(file, 'wallMs')).toFixed(2)} ms   cpu ${median(of(file, 'cpuMs')).toFixed(2)} ms   entry to response ${median(of(file, 'answerMs')).toFixed(2)} ms`);
    }
    for (const kind of ['cjs', 'mjs']) {
      for (const base of ['plain', 'package']) {
        const [from, to] = [`${base}.${kind}`, `helper.${kind}`];
        console.log(`  ${to} − ${from}: wall ${interval(from, to, 'wallMs')}   cpu ${interval(from, to, 'cpuMs')}   entry to response ${interval(from, to, 'answerMs')}`);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exitCode = 1;
});
