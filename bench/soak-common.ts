/**
 * What the background soaks share: a project's function files, POSTs that never reject, JSON
 * reads with a deadline, and the processes a run left behind.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { REPO_ROOT } from '../__tests__/helpers/cli';
import { isAlive } from '../__tests__/helpers/processes';

export const REQUEST_TIMEOUT_MS = 10_000;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const fmt = (value: number): string => value.toFixed(1);

/** Writes each function's files under `project/functions/NAME/`. */
export function writeFunctions(project: string, functions: Record<string, Record<string, string>>): void {
  for (const [name, files] of Object.entries(functions)) {
    for (const [file, content] of Object.entries(files)) {
      const target = path.join(project, 'functions', name, file);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, content);
    }
  }
}

/** alyx's function helper in the project, as `npm install alyx` would provide it. */
export function linkHelper(project: string): void {
  fs.mkdirSync(path.join(project, 'node_modules'), { recursive: true });
  fs.symlinkSync(REPO_ROOT, path.join(project, 'node_modules', 'alyx'), 'dir');
}

/** Live processes whose command line mentions `folder` (this process excluded). */
export function processesMentioning(folder: string): Array<{ pid: number; cmdline: string }> {
  const found: Array<{ pid: number; cmdline: string }> = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      continue;
    }
    if (cmdline.includes(folder) && isAlive(Number(entry))) found.push({ pid: Number(entry), cmdline });
  }
  return found;
}

/** One POST of a background invocation; never rejects: no HTTP answer is status null. */
export function postAsync(agent: http.Agent, base: string, functionName: string, requestId: string, body: string): Promise<{ status: number | null }> {
  const url = new URL(base);
  return new Promise((resolve) => {
    const req = http.request({ agent, host: url.hostname, port: url.port, path: `/api/async/functions/${functionName}`, method: 'POST', timeout: REQUEST_TIMEOUT_MS }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? null }));
      res.on('error', () => resolve({ status: null }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: null }));
    req.setHeader('Content-Type', 'application/json');
    req.setHeader('X-Request-Id', requestId);
    req.end(body);
  });
}

/** A GET answered with JSON (body null when it is not); tried up to `tries` times before it throws. */
export async function getJson(base: string, pathname: string, tries = 3): Promise<{ status: number; body: Record<string, unknown> | null }> {
  for (let attempt = 1; ; attempt++) {
    try {
      const response = await fetch(`${base}${pathname}`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      const text = await response.text();
      let body: Record<string, unknown> | null = null;
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        // not JSON
      }
      return { status: response.status, body };
    } catch (error) {
      if (attempt >= tries) throw error;
      await sleep(200);
    }
  }
}
