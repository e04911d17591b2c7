import path from 'node:path';
import { resolveConfig } from '../../../src/config/resolve';
import { describeAll } from '../../../src/functions/describe';
import { discoverFunctions } from '../../../src/functions/discovery';
import type { ExecutionPlan } from '../../../src/functions/entrypoint';
import { makeProject, removeProject, type FixtureTree } from '../../helpers/project';

let projects: string[] = [];
afterEach(() => {
  projects.forEach(removeProject);
  projects = [];
});

/** GET /api/functions for a fresh project, each function planned as ready or invalid (no PATH lookups). */
function describeProject(tree: FixtureTree): ReturnType<typeof describeAll> {
  const root = makeProject(tree);
  projects.push(root);
  const config = resolveConfig({ projectDir: root, env: {} });
  const registered = discoverFunctions(path.join(root, 'functions'), {}).map((def) => {
    const plan: ExecutionPlan = {
      status: def.invalid === null ? 'ready' : 'invalid',
      message: def.invalid,
      exec: 'interpreter',
      from: 'source',
      file: def.entry,
      command: def.invalid === null ? '/usr/bin/node' : null,
      args: def.entry ? [def.entry] : [],
    };
    return { def, plan };
  });
  return describeAll(registered, config);
}

describe('GET /api/functions and alyx list --json: schedules', () => {
  it('lists a function\'s schedules (name, type, expression, timezone, enabled) and leaves the key out when it has none', () => {
    const body = describeProject({
      'functions/reports/index.js': '',
      'functions/reports/manifest.yaml': [
        'schedules:',
        '  - { name: nightly, type: cron, expression: "0 3 * * *", timezone: Europe/Berlin, config: { input: { secret: x } } }',
        '  - { name: poll, type: interval, expression: 5m, enabled: false }',
        '',
      ].join('\n'),
      'functions/plain/index.js': '',
    });
    const [plain, reports] = body.functions;
    expect(plain.name).toBe('plain');
    expect(plain).not.toHaveProperty('schedules');
    expect(reports).toMatchObject({ name: 'reports', status: 'ready' });
    expect(reports.schedules).toEqual([
      { name: 'nightly', type: 'cron', expression: '0 3 * * *', timezone: 'Europe/Berlin', enabled: true },
      { name: 'poll', type: 'interval', expression: '5m', timezone: 'UTC', enabled: false },
    ]);
  });

  it('a function whose schedules are invalid is listed invalid, with the reason, and no schedules', () => {
    const body = describeProject({
      'functions/broken/index.js': '',
      'functions/broken/manifest.yaml': 'schedules:\n  - { name: once, type: one_time, expression: "2026-05-01 10:00" }\n',
    });
    expect(body.functions[0]).toMatchObject({
      name: 'broken',
      status: 'invalid',
      message: expect.stringContaining('schedules[0] "once": expression "2026-05-01 10:00" is not an RFC 3339 time with an offset (it has no offset)'),
    });
    expect(body.functions[0]).not.toHaveProperty('schedules');
  });
});
