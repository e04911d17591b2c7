import { queue, recordingFunction, waitForInvocation } from '../helpers/background';
import { cleanEnv, runCli } from '../helpers/cli';
import { freePort, hasNatsServer, NatsServers } from '../helpers/nats-server';
import { makeProject, removeProject } from '../helpers/project';
import { request, startServer, stopAllServers, type RunningServer } from '../helpers/server';

jest.setTimeout(90_000);

/** SPEC §14: several alyx replicas on one real nats-server, and what they do when it goes away. */
const available = hasNatsServer('replicas on NATS JetStream');
const run = available ? it : it.skip;

describe('replicas on NATS JetStream', () => {
  let project: string;
  let nats: NatsServers | null = null;
  const serve = (url = (nats as NatsServers).url): Promise<RunningServer> => startServer(['serve', '-C', project], { env: cleanEnv({ ALYX_STATE_URL: url }) });

  beforeEach(async () => {
    project = makeProject({
      'functions/echo/index.js': recordingFunction('reply({ input: r.input });'),
      'functions/broken/index.js': recordingFunction("fail({ code: 'BAD_ORDER', message: 'no such order', status: 422 });"),
    });
    if (available) nats = await NatsServers.single();
  });
  afterEach(async () => {
    await stopAllServers();
    await nats?.stop();
    nats = null;
    removeProject(project);
  });

  run('creates its streams and buckets at start, and finds them the next time', async () => {
    const first = await serve();
    const created = first.logs().map((line) => String(line.msg)).filter((msg) => msg.startsWith('state: '));
    expect(created).toEqual(expect.arrayContaining(['state: stream ALYX_WORK created', 'state: stream ALYX_CALLBACKS created', expect.stringMatching(/^state: key-value bucket alyx_invocations created/)]));
    expect(created.find((msg) => msg.startsWith('state: consumer alyx-worker created'))).toMatch(/ack deadline 40s/);
    await first.stop();
    const second = await serve();
    const found = second.logs().map((line) => String(line.msg)).filter((msg) => msg.startsWith('state: '));
    expect(found).toEqual(expect.arrayContaining(['state: stream ALYX_WORK found', 'state: consumer alyx-worker found', 'state: key-value bucket alyx_dead_letters found']));
    expect(found.filter((msg) => msg.includes('created'))).toEqual([]);
  });

  run('what one replica queued, another runs, and every replica reads its result and the dead letters', async () => {
    const replicas = [await serve(), await serve(), await serve()];
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push(await queue(replicas[i % 3], 'echo', { i }));
    const broken = await queue(replicas[0], 'broken');
    for (const id of ids) {
      for (const replica of replicas) expect(await waitForInvocation(replica, id, ['succeeded'], 20_000)).toMatchObject({ status: 'succeeded', attempts: 1 });
    }
    await waitForInvocation(replicas[0], broken, ['dead']);
    for (const replica of replicas) {
      const letters = await request(`${replica.url}/api/dead-letters`, { headers: {} });
      // Production hides the dead-letter endpoints without an admin token; the CLI reads the same store.
      expect(letters.status).toBe(404);
    }
    const listed = await runCli(['dead-letters', '--json', '-C', project], { env: cleanEnv({ ALYX_STATE_URL: (nats as NatsServers).url }) });
    expect(JSON.parse(listed.stdout)).toMatchObject({ count: 1, dead_letters: [{ request_id: broken, function: 'broken', error: { code: 'BAD_ORDER' } }] });
    // Each invocation ran once, on some replica.
    const ranOn = replicas.map((replica) => replica.logs().filter((line) => line.status === 'succeeded' && typeof line.attempt === 'number').length);
    expect(ranOn.reduce((a, b) => a + b, 0)).toBe(12);
  });

  run('NATS unreachable at start: alyx serve exits 1 with the URL and the reason', async () => {
    const port = await freePort();
    const result = await runCli(['serve', '-C', project, '--port', '0'], { env: cleanEnv({ ALYX_STATE_URL: `nats://alyx:secret@127.0.0.1:${port}` }) });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`state.url nats://alyx:***@127.0.0.1:${port}: cannot connect to NATS: connection refused`);
    expect(result.stderr).not.toContain('secret');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  run('a malformed nats URL is refused at start with what to write', async () => {
    const result = await runCli(['serve', '-C', project, '--port', '0'], { env: cleanEnv({ ALYX_STATE_URL: 'nats://127.0.0.1:4222?replicas=9' }) });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('replicas=9 is not a whole number from 1 to 5');
  });

  run('NATS lost: ready and async calls answer 503 with the reason, synchronous calls go on; back: all serve again', async () => {
    const server = await serve();
    expect((await request(`${server.url}/api/ready`)).status).toBe(200);
    const node = (nats as NatsServers).nodes[0];
    await node.stop();
    const down = await pollUntil(() => request(`${server.url}/api/ready`), (answer) => answer.status === 503);
    expect(down.body.reasons).toEqual([{ reason: 'state_unavailable', message: expect.stringContaining('the connection to NATS was lost') }]);
    const refused = await request(`${server.url}/api/async/functions/echo`, { method: 'POST', body: '{}' });
    expect(refused).toMatchObject({ status: 503, body: { error: { code: 'STATE_UNAVAILABLE', message: expect.stringContaining('reconnecting') } } });
    expect(await request(`${server.url}/api/functions/echo`, { method: 'POST', body: '{"n":1}' })).toMatchObject({ status: 200, body: { success: true, output: { input: { n: 1 } } } });
    expect((await request(`${server.url}/api/health`)).status).toBe(200);

    await node.start();
    await pollUntil(() => request(`${server.url}/api/ready`), (answer) => answer.status === 200, 20_000);
    const id = await queue(server, 'echo', { back: true });
    expect(await waitForInvocation(server, id, ['succeeded'])).toMatchObject({ envelope: { output: { input: { back: true } } } });
  });
});

/** Asks until the answer passes `done`, for at most `timeoutMs`; throws with the last answer. */
async function pollUntil<T>(ask: () => Promise<T>, done: (answer: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await ask();
    if (done(answer)) return answer;
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms; last answer: ${JSON.stringify(answer)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
