import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { hasCommand, warnSkip } from './tools';

/** Whether nats-server is installed; when not, says SKIP loudly (a failure in CI). */
export function hasNatsServer(what: string): boolean {
  if (hasCommand('nats-server')) return true;
  warnSkip(what, 'nats-server');
  return false;
}

/** A free TCP port on 127.0.0.1 (taken, then let go). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** One nats-server with JetStream, in its own folder, on ports of its own. */
export class NatsNode {
  readonly name: string;
  readonly port: number;
  readonly dir: string;
  readonly #config: string;
  #child: ChildProcess | null = null;
  #log = '';

  constructor(name: string, port: number, dir: string, config: string) {
    this.name = name;
    this.port = port;
    this.dir = dir;
    this.#config = config;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#child !== null && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** What the server printed, for a failing test's message. */
  get log(): string {
    return this.#log.slice(-4000);
  }

  async start(timeoutMs = 10_000): Promise<void> {
    const configFile = path.join(this.dir, 'server.conf');
    fs.writeFileSync(configFile, this.#config);
    const child = spawn('nats-server', ['-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    const keep = (chunk: Buffer): void => {
      this.#log = (this.#log + chunk.toString()).slice(-20_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const deadline = Date.now() + timeoutMs;
    while (!(await accepts(this.port))) {
      if (!this.running) throw new Error(`nats-server ${this.name} exited at start:\n${this.log}`);
      if (Date.now() > deadline) throw new Error(`nats-server ${this.name} did not listen on ${this.port} within ${timeoutMs} ms:\n${this.log}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Ends the server (SIGTERM, then SIGKILL after 5 s) and waits until it has gone. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || !this.running) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }
}

/** nats-server instances for a test: one, or a three-node JetStream cluster; `stop()` ends all and removes their folders. */
export class NatsServers {
  readonly nodes: NatsNode[];
  readonly #root: string;

  private constructor(nodes: NatsNode[], root: string) {
    this.nodes = nodes;
    this.#root = root;
  }

  /** The URL alyx is given: every node, comma-separated, for a cluster. */
  get url(): string {
    return this.nodes.map((node) => node.url).join(',');
  }

  static async single(): Promise<NatsServers> {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'alyx-nats-'));
    const port = await freePort();
    const node = new NatsNode('n1', port, root, `listen: 127.0.0.1:${port}\nserver_name: n1\njetstream { store_dir: "${path.join(root, 'js')}" }\n`);
    const servers = new NatsServers([node], root);
    try {
      await node.start();
    } catch (error) {
      await servers.stop();
      throw error;
    }
    return servers;
  }

  static async cluster(size = 3): Promise<NatsServers> {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'alyx-nats-'));
    const ports = await Promise.all(Array.from({ length: size }, () => freePort()));
    const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()));
    const routes = routePorts.map((port) => `nats-route://127.0.0.1:${port}`).join(', ');
    const nodes = ports.map((port, index) => {
      const name = `n${index + 1}`;
      const dir = path.join(root, name);
      fs.mkdirSync(dir);
      const config = [
        `listen: 127.0.0.1:${port}`,
        `server_name: ${name}`,
        `jetstream { store_dir: "${path.join(dir, 'js')}" }`,
        `cluster { name: alyx-test, listen: 127.0.0.1:${routePorts[index]}, routes: [${routes}] }`,
        '',
      ].join('\n');
      return new NatsNode(name, port, dir, config);
    });
    const servers = new NatsServers(nodes, root);
    try {
      await Promise.all(nodes.map((node) => node.start()));
    } catch (error) {
      await servers.stop();
      throw error;
    }
    return servers;
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()));
    fs.rmSync(this.#root, { recursive: true, force: true });
  }
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
