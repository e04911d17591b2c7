import fs from 'node:fs';
import path from 'node:path';
import { cleanEnv, runCli as runAlyx } from '../helpers/cli';
import { recordingFunction, waitForInvocation } from '../helpers/background';
import { waitFor } from '../helpers/processes';
import { makeProject, removeProject } from '../helpers/project';
import { storeBackends } from '../helpers/state-backends';
import { request, startServer, stopAllServers, type RunningServer } from '../helpers/server';

jest.setTimeout(90_000);

/** SPEC §12 against real alyx processes that are restarted and killed for real, on each store (SPEC §14). */
describe.each(storeBackends('schedules on JetStream'))('schedules ($name)', (store) => {
  const it = store.available ? global.it : global.it.skip;
  let project: string;
  const env = (): NodeJS.ProcessEnv => cleanEnv(store.env());
  const serve = (args: string[] = []): Promise<RunningServer> => startServer(['serve', '-C', project, ...args], { env: env() });
  const runCli = (args: string[]): ReturnType<typeof runAlyx> => runAlyx(args, { env: env() });
  /** Each fire time that ran: the trigger's scheduled_at, as the function saw it. */
  const fired = (): string[] => {
    const file = path.join(project, 'fired.log');
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
  };
  const ticker = (manifest: string): Record<string, string> => ({
    'functions/ticker/index.js': recordingFunction(
      "fs.appendFileSync('../../fired.log', r.context.trigger.scheduled_at + ' ' + r.context.trigger.schedule + '\\n'); " +
        "fs.appendFileSync('../../attempts.log', r.context.trigger.scheduled_at + ' ' + r.request_id + ' ' + r.context.attempt + '\\n'); reply({ trigger: r.context.trigger });",
    ),
    'functions/ticker/manifest.yaml': manifest,
  });
  const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

  beforeEach(() => store.setUp());
  afterEach(async () => {
    await stopAllServers();
    await store.tearDown();
    removeProject(project);
  });

  it('an interval of 1 s over 30 s with two restarts, one a SIGKILL: no fire time runs twice', async () => {
    project = makeProject(ticker('schedules:\n  - { name: tick, type: interval, expression: 1s }\n'));
    const started = Date.now();
    const servers = [await serve()];
    await waitFor(() => fired().length >= 5, 15_000);
    await servers[0].stop('SIGKILL');
    servers.push(await serve());
    await waitFor(() => Date.now() - started >= 20_000, 20_000, 200);
    expect(await servers[1].stop('SIGTERM')).toMatchObject({ code: 0 });
    servers.push(await serve());
    await waitFor(() => Date.now() - started >= 30_000, 20_000, 200);
    await servers[2].stop('SIGTERM');

    // Each fire time was queued once, by one of the three processes.
    const queued = servers.flatMap((server) => server.logs().filter((line) => line.schedule === 'tick' && line.scheduled_at).map((line) => line.scheduled_at));
    expect(queued.length).toBeGreaterThanOrEqual(8);
    expect(new Set(queued).size).toBe(queued.length);
    // Each ran as one invocation: a second start is only that invocation tried again (at least
    // once, SPEC §11), after the SIGKILL cut off its first attempt.
    const attempts = fs.readFileSync(path.join(project, 'attempts.log'), 'utf8').split('\n').filter(Boolean).map((line) => line.split(' '));
    const byTime = new Map<string, Array<[string, string]>>();
    for (const [time, id, attempt] of attempts) byTime.set(time, [...(byTime.get(time) ?? []), [id, attempt]]);
    for (const runs of byTime.values()) {
      expect(new Set(runs.map(([id]) => id)).size).toBe(1);
      expect(new Set(runs.map(([, attempt]) => attempt)).size).toBe(runs.length);
    }
    expect(attempts.length - byTime.size).toBeLessThanOrEqual(2);
    // Every fire time is a whole second (intervals are counted from the Unix epoch).
    for (const time of byTime.keys()) expect(Date.parse(time) % 1000).toBe(0);
  });

  it('two alyx processes on one state fire each fire time once between them', async () => {
    project = makeProject(ticker('schedules:\n  - { name: tick, type: interval, expression: 1s }\n'));
    const [one, two] = [await serve(), await serve()];
    await waitFor(() => fired().length >= 6, 20_000, 100);
    await Promise.all([one.stop('SIGTERM'), two.stop('SIGTERM')]);
    const times = fired().map((line) => line.split(' ')[0]);
    expect(new Set(times).size).toBe(times.length);
    // What each process queued: no fire time by both.
    const queuedBy = (server: RunningServer): unknown[] => server.logs().filter((line) => line.schedule === 'tick' && line.scheduled_at).map((line) => line.scheduled_at);
    const queued = [...queuedBy(one), ...queuedBy(two)];
    expect(new Set(queued).size).toBe(queued.length);
    expect(queued.length).toBeGreaterThanOrEqual(times.length);
  });

  it('a fire time missed while alyx was down runs once at start: the latest, not each', async () => {
    project = makeProject(ticker('schedules:\n  - { name: every2, type: interval, expression: 2s }\n'));
    let server = await serve();
    await waitFor(() => fired().length >= 1, 10_000);
    await server.stop('SIGTERM');
    const stoppedAt = Date.now();
    const before = fired().length;
    await pause(4500);
    server = await serve();
    const madeUpLine = await server.waitForLog((line) => line.made_up === true, 10_000);
    await waitFor(() => fired().length >= before + 1, 10_000);
    await server.stop('SIGTERM');
    // Two fire times passed while alyx was down; only the latest of them ran, once.
    const madeUpAt = Date.parse(madeUpLine.scheduled_at as string);
    expect(madeUpAt).toBeGreaterThan(stoppedAt + 2000);
    expect(server.logs().filter((line) => line.made_up === true)).toHaveLength(1);
    const times = fired().map((line) => Date.parse(line.split(' ')[0]));
    expect(times.filter((time) => time > stoppedAt && time < madeUpAt)).toEqual([]);
    expect(times.filter((time) => time === madeUpAt)).toHaveLength(1);
  });

  it('a one_time schedule in the past runs once and never again across restarts', async () => {
    project = makeProject(ticker('schedules:\n  - { name: launch, type: one_time, expression: "2026-01-01T09:00:00Z", config: { input: { go: true } } }\n'));
    for (let round = 0; round < 3; round++) {
      const server = await serve();
      if (round === 0) await waitFor(() => fired().length === 1, 10_000);
      else await pause(1500);
      await server.stop('SIGTERM');
    }
    expect(fired()).toEqual(['2026-01-01T09:00:00.000Z launch']);
  });

  it('development fires schedules only on request, or by themselves with dev.schedules: true', async () => {
    project = makeProject(ticker('schedules:\n  - { name: tick, type: interval, expression: 1s }\n  - { name: nightly, type: cron, expression: "0 3 * * *", timezone: Europe/Berlin }\n'));
    const server = await startServer(['dev', '-C', project, '--no-watch'], { env: env() });
    await pause(2500);
    expect(fired()).toEqual([]);

    const listed = await request(`${server.url}/api/schedules`);
    expect(listed.status).toBe(200);
    expect(listed.body.schedules).toEqual([
      { function: 'ticker', name: 'tick', type: 'interval', expression: '1s', timezone: 'UTC', enabled: true, next_run: expect.any(String), last_run: null, last_status: null },
      { function: 'ticker', name: 'nightly', type: 'cron', expression: '0 3 * * *', timezone: 'Europe/Berlin', enabled: true, next_run: expect.stringMatching(/T0[12]:00:00\.000Z$/), last_run: null, last_status: null },
    ]);

    const run = await runCli(['schedules', 'run', 'ticker/nightly', '-C', project]);
    expect(run.code).toBe(0);
    const { request_id: id } = JSON.parse(run.stdout);
    const done = await waitForInvocation(server, id, ['succeeded']);
    expect(done.envelope.output.trigger).toMatchObject({ type: 'schedule', schedule: 'nightly', on_request: true });
    const after = await request(`${server.url}/api/schedules`);
    expect(after.body.schedules[1]).toMatchObject({ name: 'nightly', last_status: 'succeeded', last_run: expect.any(String) });
    expect(fired()).toHaveLength(1);

    const unknown = await runCli(['schedules', 'run', 'ticker/nope', '-C', project]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('No schedule "ticker/nope"');
    expect((await runCli(['schedules', 'run', 'ticker', '-C', project])).code).toBe(2);
    const table = await runCli(['schedules', '--json', '-C', project]);
    expect(JSON.parse(table.stdout).schedules.map((each: { name: string }) => each.name)).toEqual(['tick', 'nightly']);
    await server.stop();

    fs.writeFileSync(path.join(project, 'alyx.yaml'), 'dev: { schedules: true }\n');
    await startServer(['dev', '-C', project, '--no-watch'], { env: env() });
    expect(await waitFor(() => fired().some((line) => line.endsWith(' tick')), 10_000)).toBe(true);
  });

  it('a bad expression or time zone makes the function invalid with the reason', async () => {
    project = makeProject({
      ...ticker('schedules:\n  - { name: nightly, type: cron, expression: "0 3 * * *", timezone: Mars/Olympus }\n'),
      'functions/other/index.js': recordingFunction('reply({});'),
      'functions/other/manifest.yaml': 'schedules:\n  - { name: often, type: cron, expression: "61 * * * *" }\n',
    });
    const listed = await runCli(['list', '--json', '-C', project]);
    const byName = new Map(JSON.parse(listed.stdout).functions.map((fn: { name: string }) => [fn.name, fn]));
    expect(byName.get('ticker')).toMatchObject({ status: 'invalid', message: expect.stringContaining('Mars/Olympus') });
    expect(byName.get('other')).toMatchObject({ status: 'invalid', message: expect.stringContaining('"61 * * * *" is not a valid cron expression') });
  });

  it('a schedule whose function turns invalid stops firing, and the rest of the state stays as it was', async () => {
    project = makeProject(ticker('schedules:\n  - { name: tick, type: interval, expression: 1s }\n'));
    const server = await serve();
    await waitFor(() => fired().length >= 2, 10_000);
    fs.writeFileSync(path.join(project, 'functions/ticker/manifest.yaml'), 'schedules:\n  - { name: tick, type: interval, expression: 1s, bogus: 1 }\n');
    server.child.kill('SIGHUP');
    await server.waitForLog((line) => line.change === 'changed' && line.function === 'ticker');
    const count = fired().length;
    await pause(2500);
    expect(fired().length).toBeLessThanOrEqual(count + 1); // one fire may have been under way at the reload
    const schedules = await request(`${server.url}/api/schedules`);
    expect(schedules.body).toEqual({ schedules: [] });
    const functions = await request(`${server.url}/api/functions`);
    expect(functions.body.functions[0]).toMatchObject({ name: 'ticker', status: 'invalid', message: expect.stringContaining('bogus') });
    // Mended, it fires again from now on.
    fs.writeFileSync(path.join(project, 'functions/ticker/manifest.yaml'), 'schedules:\n  - { name: tick, type: interval, expression: 1s }\n');
    const mended = fired().length;
    server.child.kill('SIGHUP');
    expect(await waitFor(() => fired().length >= mended + 2, 10_000)).toBe(true);
    const times = fired().map((line) => line.split(' ')[0]);
    expect(new Set(times).size).toBe(times.length);
  });
});
