import { latestFireAt, nextFireAt, parseSchedules, type ManifestSchedule, type ScheduleDef } from '../../../src/functions/schedules';

const CRON_RULE =
  'write 5 fields (minute hour day-of-month month day-of-week), 6 with seconds first, or one of @hourly, @daily, @weekly, @monthly, @yearly, @annually, @midnight';
const RFC3339_RULE = 'write an RFC 3339 time with an offset, such as 2026-05-01T10:00:00Z or 2026-05-01T12:00:00+02:00';
const TIMEZONE_RULE = 'is not an IANA time zone: use a name such as Europe/Berlin, America/New_York or UTC';

/** The one schedule `schedule` makes, which must be valid. */
function one(schedule: Partial<ManifestSchedule> & Pick<ManifestSchedule, 'type' | 'expression'>): ScheduleDef {
  const parsed = parseSchedules([{ name: 'job', ...schedule }]);
  if (!parsed.ok) throw new Error(parsed.problems.join('; '));
  expect(parsed.schedules).toHaveLength(1);
  return parsed.schedules[0];
}

/** The problems of a list of schedules, which must be invalid. */
function problems(schedules: ManifestSchedule[]): string[] {
  const parsed = parseSchedules(schedules);
  if (parsed.ok) throw new Error('expected the schedules to be invalid');
  return parsed.problems;
}

const cron = (expression: string, timezone?: string): ScheduleDef => one({ type: 'cron', expression, timezone });
const ms = (iso: string): number => Date.parse(iso);
const iso = (epochMs: number | null): string | null => (epochMs === null ? null : new Date(epochMs).toISOString());

describe('parseSchedules: what a valid schedule becomes', () => {
  it('no schedules (or none written) is an empty list', () => {
    expect(parseSchedules(undefined)).toEqual({ ok: true, schedules: [] });
    expect(parseSchedules([])).toEqual({ ok: true, schedules: [] });
  });

  it('a cron schedule: timezone UTC, input {} and enabled by default', () => {
    expect(cron('0 3 * * *')).toEqual({ name: 'job', type: 'cron', expression: '0 3 * * *', timezone: 'UTC', input: {}, enabled: true });
  });

  it('keeps the timezone, config.input and enabled as written; other keys of config are ignored', () => {
    const def = one({
      type: 'cron',
      expression: '0 3 * * *',
      timezone: 'Europe/Berlin',
      config: { input: { report: 'daily' }, timeout: '30s' },
      enabled: false,
    });
    expect(def).toEqual({
      name: 'job', type: 'cron', expression: '0 3 * * *', timezone: 'Europe/Berlin', input: { report: 'daily' }, enabled: false,
    });
  });

  it.each(['*/5 * * * *', '0 9 * * MON-FRI', '0 0 1,15 * *', '30 */10 * * * *', '0 0 L * *', '0 0 29 2 *'])('accepts the cron expression %p', (expression) => {
    expect(cron(expression).expression).toBe(expression);
  });

  it.each(['@hourly', '@daily', '@weekly', '@monthly', '@yearly', '@annually', '@midnight', '@DAILY'])('accepts the name %s', (expression) => {
    expect(cron(expression).type).toBe('cron');
  });

  it.each([
    ['1s', 1_000],
    ['30s', 30_000],
    ['1500ms', 1_500],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['90', 90_000],
  ])('an interval of %p is %d ms', (expression, intervalMs) => {
    expect(one({ type: 'interval', expression })).toEqual({
      name: 'job', type: 'interval', expression, timezone: 'UTC', input: {}, enabled: true, intervalMs,
    });
  });

  it.each([
    ['2026-05-01T10:00:00Z', '2026-05-01T10:00:00.000Z'],
    ['2026-05-01T12:00:00+02:00', '2026-05-01T10:00:00.000Z'],
    ['2026-05-01T05:30:00-04:30', '2026-05-01T10:00:00.000Z'],
    ['2026-05-01t10:00:00.250z', '2026-05-01T10:00:00.250Z'],
    ['2028-02-29T00:00:00Z', '2028-02-29T00:00:00.000Z'],
  ])('a one_time of %p is at %s', (expression, at) => {
    const def = one({ type: 'one_time', expression });
    expect(def).toEqual({ name: 'job', type: 'one_time', expression, timezone: 'UTC', input: {}, enabled: true, at: ms(at) });
  });
});

describe('parseSchedules: each problem names the schedule, says what is wrong and what to do', () => {
  const bad = (schedule: Omit<ManifestSchedule, 'name'>): string[] => problems([{ name: 'ok', type: 'interval', expression: '1m' }, { name: 'nightly', ...schedule }]);

  it.each([
    ['61 * * * *', 'Invalid value for minute: 61'],
    ['0 24 * * *', 'Invalid value for hour: 24'],
    ['* * * *', 'it has 4 fields'],
    ['* * * * * * *', 'it has 7 fields'],
    ['', 'it has 0 fields'],
    ['@reboot', 'unknown name @reboot'],
    ['@every 5m', 'unknown name @every 5m'],
    ['0 0 * * FUNDAY', 'configuration entry 5 (FUNDAY) contains illegal characters'],
  ])('cron %p is not a valid cron expression (%s)', (expression, why) => {
    expect(bad({ type: 'cron', expression })).toEqual([
      `schedules[1] "nightly": expression ${JSON.stringify(expression)} is not a valid cron expression (${why}): ${CRON_RULE}`,
    ]);
  });

  it.each(['0 0 30 2 *', '0 0 31 4,6,9,11 *'])('cron %p never fires', (expression) => {
    expect(bad({ type: 'cron', expression })).toEqual([
      `schedules[1] "nightly": expression "${expression}" never fires (no date matches its day and month fields): change them`,
    ]);
  });

  it.each(['Mars/Olympus', 'Berlin', '+01:00', '', 'UTC+1'])('timezone %p is not an IANA time zone', (timezone) => {
    expect(bad({ type: 'cron', expression: '0 3 * * *', timezone })).toEqual([`schedules[1] "nightly": timezone ${JSON.stringify(timezone)} ${TIMEZONE_RULE}`]);
  });

  it('a timezone on an interval is an error: intervals count from the epoch', () => {
    expect(bad({ type: 'interval', expression: '1h', timezone: 'Europe/Berlin' })).toEqual([
      'schedules[1] "nightly": timezone is only for cron schedules (an interval counts from the Unix epoch, the same in every zone: remove timezone)',
    ]);
  });

  it('a timezone on a one_time is an error: its expression carries the offset', () => {
    expect(bad({ type: 'one_time', expression: '2026-05-01T10:00:00Z', timezone: 'UTC' })).toEqual([
      'schedules[1] "nightly": timezone is only for cron schedules (a one_time expression carries its own offset: write the offset into the time and remove timezone)',
    ]);
  });

  it.each(['5 minutes', 'soon', '', '-5s', '1d'])('interval %p is not a duration', (expression) => {
    expect(bad({ type: 'interval', expression })).toEqual([
      `schedules[1] "nightly": expression ${JSON.stringify(expression)} is not a valid interval: write a duration such as 30s, 5m or 1h (a plain number is seconds)`,
    ]);
  });

  it.each(['500ms', '0', '0.5', '999ms'])('interval %p is shorter than 1s', (expression) => {
    expect(bad({ type: 'interval', expression })).toEqual([
      `schedules[1] "nightly": expression "${expression}" is shorter than the shortest interval, 1s: write 1s or more`,
    ]);
  });

  it.each([
    ['2026-05-01T10:00:00', 'it has no offset'],
    ['2026-05-01 10:00', 'it has no offset'],
    ['2026-05-01 10:00:00Z', 'not of the form YYYY-MM-DDTHH:MM:SS then Z or ±HH:MM'],
    ['2026-05-01', 'not of the form YYYY-MM-DDTHH:MM:SS then Z or ±HH:MM'],
    ['tomorrow', 'not of the form YYYY-MM-DDTHH:MM:SS then Z or ±HH:MM'],
    ['1777629600', 'not of the form YYYY-MM-DDTHH:MM:SS then Z or ±HH:MM'],
    ['2026-05-01T10:00:00+0200', 'not of the form YYYY-MM-DDTHH:MM:SS then Z or ±HH:MM'],
    ['2026-02-30T10:00:00Z', 'no such date or time'],
    ['2027-02-29T10:00:00Z', 'no such date or time'],
    ['2026-05-01T24:00:00Z', 'no such date or time'],
    ['2026-12-31T23:59:60Z', 'no such date or time'],
    ['2026-05-01T10:00:00+24:00', 'no such offset +24:00'],
  ])('one_time %p is not an RFC 3339 time with an offset (%s)', (expression, why) => {
    expect(bad({ type: 'one_time', expression })).toEqual([
      `schedules[1] "nightly": expression "${expression}" is not an RFC 3339 time with an offset (${why}): ${RFC3339_RULE}`,
    ]);
  });

  it('a name used twice is an error at the second use', () => {
    expect(
      problems([
        { name: 'nightly', type: 'cron', expression: '0 3 * * *' },
        { name: 'hourly', type: 'cron', expression: '@hourly' },
        { name: 'nightly', type: 'interval', expression: '1h' },
      ]),
    ).toEqual(['schedules[2] "nightly": the name is already used by schedules[0]: give each schedule of a function its own name']);
  });

  it('every problem is reported, in order', () => {
    expect(
      problems([
        { name: 'a', type: 'cron', expression: '61 * * * *' },
        { name: 'b', type: 'cron', expression: '0 3 * * *' },
        { name: 'c', type: 'interval', expression: '10ms' },
      ]).map((problem) => problem.slice(0, 'schedules[0] "a"'.length)),
    ).toEqual(['schedules[0] "a"', 'schedules[2] "c"']);
  });

  it('a disabled schedule is checked all the same', () => {
    expect(problems([{ name: 'off', type: 'cron', expression: '61 * * * *', enabled: false }])).toHaveLength(1);
  });
});

describe('nextFireAt and latestFireAt', () => {
  describe('cron (UTC)', () => {
    const daily = cron('0 3 * * *');

    it('next is strictly after the time given; latest is at or before it', () => {
      expect(iso(nextFireAt(daily, ms('2026-01-01T02:59:59.999Z')))).toBe('2026-01-01T03:00:00.000Z');
      expect(iso(nextFireAt(daily, ms('2026-01-01T03:00:00.000Z')))).toBe('2026-01-02T03:00:00.000Z');
      expect(iso(latestFireAt(daily, ms('2026-01-01T03:00:00.000Z')))).toBe('2026-01-01T03:00:00.000Z');
      expect(iso(latestFireAt(daily, ms('2026-01-01T02:59:59.999Z')))).toBe('2025-12-31T03:00:00.000Z');
      expect(iso(latestFireAt(daily, ms('2026-01-01T03:00:00.001Z')))).toBe('2026-01-01T03:00:00.000Z');
    });

    it('6 fields count seconds', () => {
      const everyTenSeconds = cron('*/10 * * * * *');
      expect(iso(nextFireAt(everyTenSeconds, ms('2026-01-01T00:00:05.500Z')))).toBe('2026-01-01T00:00:10.000Z');
      expect(iso(nextFireAt(everyTenSeconds, ms('2026-01-01T00:00:10.000Z')))).toBe('2026-01-01T00:00:20.000Z');
      expect(iso(latestFireAt(everyTenSeconds, ms('2026-01-01T00:00:19.999Z')))).toBe('2026-01-01T00:00:10.000Z');
    });

    it('@weekly is Sunday midnight, in the schedule\'s zone', () => {
      expect(iso(nextFireAt(cron('@weekly'), ms('2026-01-01T00:00:00Z')))).toBe('2026-01-04T00:00:00.000Z');
      expect(iso(nextFireAt(cron('@weekly', 'America/New_York'), ms('2026-01-01T00:00:00Z')))).toBe('2026-01-04T05:00:00.000Z');
    });

    it('a leap day fires every four years', () => {
      const leapDay = cron('0 0 29 2 *');
      expect(iso(nextFireAt(leapDay, ms('2026-01-01T00:00:00Z')))).toBe('2028-02-29T00:00:00.000Z');
      expect(iso(latestFireAt(leapDay, ms('2026-01-01T00:00:00Z')))).toBe('2024-02-29T00:00:00.000Z');
    });
  });

  describe('cron across DST in Europe/Berlin (spring forward 2026-03-29 02:00 -> 03:00, fall back 2026-10-25 03:00 -> 02:00)', () => {
    const fires = (def: ScheduleDef, fromIso: string, count: number): string[] => {
      const found: string[] = [];
      let after = ms(fromIso);
      for (let i = 0; i < count; i += 1) {
        const next = nextFireAt(def, after);
        if (next === null) break;
        found.push(new Date(next).toISOString());
        after = next;
      }
      return found;
    };
    const halfPastTwo = cron('30 2 * * *', 'Europe/Berlin');
    const three = cron('0 3 * * *', 'Europe/Berlin');

    it('"30 2 * * *" on the day 02:30 does not exist fires once, at 03:00 CEST, the first time after the gap', () => {
      expect(fires(halfPastTwo, '2026-03-28T00:00:00Z', 3)).toEqual([
        '2026-03-28T01:30:00.000Z', // 02:30 CET
        '2026-03-29T01:00:00.000Z', // 03:00 CEST
        '2026-03-30T00:30:00.000Z', // 02:30 CEST
      ]);
      expect(iso(latestFireAt(halfPastTwo, ms('2026-03-29T12:00:00Z')))).toBe('2026-03-29T01:00:00.000Z');
    });

    it('"30 2 * * *" on the day 02:30 happens twice fires once, at the first (CEST)', () => {
      expect(fires(halfPastTwo, '2026-10-24T00:00:00Z', 3)).toEqual([
        '2026-10-24T00:30:00.000Z', // 02:30 CEST
        '2026-10-25T00:30:00.000Z', // 02:30 CEST; not again at 02:30 CET (01:30Z)
        '2026-10-26T01:30:00.000Z', // 02:30 CET
      ]);
      expect(iso(latestFireAt(halfPastTwo, ms('2026-10-25T01:45:00Z')))).toBe('2026-10-25T00:30:00.000Z');
    });

    it('"0 3 * * *" fires once each day, at 03:00 local, on both days', () => {
      expect(fires(three, '2026-03-28T00:00:00Z', 3)).toEqual(['2026-03-28T02:00:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T01:00:00.000Z']);
      expect(fires(three, '2026-10-24T00:00:00Z', 3)).toEqual(['2026-10-24T01:00:00.000Z', '2026-10-25T02:00:00.000Z', '2026-10-26T02:00:00.000Z']);
      expect(iso(latestFireAt(three, ms('2026-10-25T01:59:59Z')))).toBe('2026-10-24T01:00:00.000Z');
    });

    it('a pattern with a step in the hour\'s minutes skips the missing hour and runs in both repeated ones', () => {
      const everyHalfHourAtTwo = cron('*/30 2 * * *', 'Europe/Berlin');
      expect(fires(everyHalfHourAtTwo, '2026-03-28T12:00:00Z', 2)).toEqual(['2026-03-30T00:00:00.000Z', '2026-03-30T00:30:00.000Z']);
      expect(fires(everyHalfHourAtTwo, '2026-10-24T12:00:00Z', 5)).toEqual([
        '2026-10-25T00:00:00.000Z',
        '2026-10-25T00:30:00.000Z',
        '2026-10-25T01:00:00.000Z',
        '2026-10-25T01:30:00.000Z',
        '2026-10-26T01:00:00.000Z',
      ]);
    });
  });

  describe('interval: multiples of the period since the Unix epoch', () => {
    const every7m = one({ type: 'interval', expression: '7m' });
    const period = 7 * 60_000;

    it('next is the following multiple; latest the multiple at or before', () => {
      expect(nextFireAt(every7m, 0)).toBe(period);
      expect(nextFireAt(every7m, period - 1)).toBe(period);
      expect(nextFireAt(every7m, period)).toBe(2 * period);
      expect(latestFireAt(every7m, period)).toBe(period);
      expect(latestFireAt(every7m, 2 * period - 1)).toBe(period);
    });

    it('does not depend on when alyx started: any time gives the same grid', () => {
      const now = ms('2026-06-15T13:14:15.926Z');
      const next = nextFireAt(every7m, now) as number;
      const latest = latestFireAt(every7m, now) as number;
      expect(next % period).toBe(0);
      expect(latest % period).toBe(0);
      expect(next - latest).toBe(period);
      expect(latest <= now && now < next).toBe(true);
    });

    it('an hour fires on the hour, UTC', () => {
      expect(iso(nextFireAt(one({ type: 'interval', expression: '1h' }), ms('2026-03-29T00:59:59Z')))).toBe('2026-03-29T01:00:00.000Z');
    });
  });

  describe('one_time', () => {
    const once = one({ type: 'one_time', expression: '2026-05-01T12:00:00+02:00' });
    const at = ms('2026-05-01T10:00:00Z');

    it('next is its time while that is still ahead, then null', () => {
      expect(nextFireAt(once, at - 1)).toBe(at);
      expect(nextFireAt(once, at)).toBeNull();
    });

    it('latest is its time once it has come, before that null', () => {
      expect(latestFireAt(once, at)).toBe(at);
      expect(latestFireAt(once, at + 86_400_000)).toBe(at);
      expect(latestFireAt(once, at - 1)).toBeNull();
    });
  });
});
