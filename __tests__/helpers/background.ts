import fs from 'node:fs';
import path from 'node:path';
import { request, type RunningServer } from './server';

/** The file every recording function appends `request_id attempt` to when it starts. */
export const RUNS_FILE = 'runs.log';

/**
 * A node function that records its start in the project's runs.log, then runs `body` with `r`
 * (the request) in scope and `reply(output)` / `fail(error)` to answer.
 */
export function recordingFunction(body: string): string {
  return `const fs = require('node:fs');
let text = '';
process.stdin.on('data', (chunk) => (text += chunk)).on('end', () => {
  const r = JSON.parse(text);
  fs.appendFileSync('../../${RUNS_FILE}', r.request_id + ' ' + r.context.attempt + '\\n');
  const reply = (output) => process.stdout.write(JSON.stringify({ request_id: r.request_id, success: true, output }));
  const fail = (error) => process.stdout.write(JSON.stringify({ request_id: r.request_id, success: false, error }));
  ${body}
});
`;
}

/** Each recorded start, in order: [request id, attempt]. */
export function runsOf(project: string): Array<[string, number]> {
  const file = path.join(project, RUNS_FILE);
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id, attempt] = line.split(' ');
      return [id, Number(attempt)];
    });
}

/** Polls GET /api/invocations/:id until its status is one of `statuses`; throws with the last answer after `timeoutMs`. */
export async function waitForInvocation(server: RunningServer, id: string, statuses: string[], timeoutMs = 15_000): Promise<Record<string, any>> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const answer = await request(`${server.url}/api/invocations/${encodeURIComponent(id)}`);
    last = answer.body;
    if (answer.status === 200 && statuses.includes(answer.body.status)) return answer.body;
    if (Date.now() >= deadline) throw new Error(`${id} did not reach ${statuses.join('|')} within ${timeoutMs} ms; last answer: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Queues an async invocation and returns its request id (expects 202). */
export async function queue(server: RunningServer, name: string, input: unknown = {}, headers: Record<string, string> = {}): Promise<string> {
  const answer = await request(`${server.url}/api/async/functions/${name}`, { method: 'POST', body: JSON.stringify(input), headers });
  if (answer.status !== 202) throw new Error(`POST /api/async/functions/${name} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  return answer.body.request_id as string;
}
