import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { boundedLogStream, LOG_BUFFER_BYTES } from '../../src/log-destination';
import { waitFor } from '../helpers/processes';
import { makeProject, removeProject } from '../helpers/project';

let root: string;
let reader: ChildProcess | null = null;
let fd: number | null = null;
let target: net.Socket | null = null;
afterEach(() => {
  target?.destroy();
  target = null;
  reader?.kill('SIGKILL');
  reader = null;
  if (fd !== null) fs.closeSync(fd);
  fd = null;
  removeProject(root);
});

describe('the log destination', () => {
  it('never blocks on a reader that stopped; drops past its buffer and then says how many', async () => {
    root = makeProject();
    const fifo = path.join(root, 'log.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    // Opened read-write so that the open itself does not wait for a reader; node wraps it as it wraps a stdout pipe.
    fd = fs.openSync(fifo, 'r+');
    target = new net.Socket({ fd, readable: false, writable: true });
    fd = null;
    const destination = boundedLogStream(target, (dropped) => `{"dropped_lines":${dropped}}\n`);

    const line = `${JSON.stringify({ msg: 'x'.repeat(200) })}\n`;
    const lines = Math.ceil((LOG_BUFFER_BYTES * 1.5) / line.length);
    const started = performance.now();
    for (let i = 0; i < lines; i++) destination.write(line);
    // Nothing reads the fifo yet: each write only queued or dropped the line.
    expect(performance.now() - started).toBeLessThan(2000);

    const out = path.join(root, 'out');
    reader = spawn('sh', ['-c', `cat < "${fifo}" > "${out}"`], { stdio: 'ignore' });
    const summary = (): RegExpExecArray | null => /\{"dropped_lines":(\d+)\}/.exec(fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '');
    expect(await waitFor(() => summary() !== null, 15_000)).toBe(true);
    const dropped = Number(summary()?.[1]);
    expect(dropped).toBeGreaterThan(0);
    expect(dropped).toBeLessThan(lines);
  });
});
