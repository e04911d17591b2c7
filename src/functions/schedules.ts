import { Cron } from 'croner';
import { parseDuration } from '../config/units';

/** SPEC §12: when a schedule fires. */
export type ScheduleType = 'cron' | 'interval' | 'one_time';

/** One item of a manifest's `schedules`, as written (after schema validation). */
export interface ManifestSchedule {
  name: string;
  type: ScheduleType;
  expression: string;
  timezone?: string;
  /** `input` is the invocation's input; other keys of the earlier server are ignored. */
  config?: { input?: Record<string, unknown>; [key: string]: unknown };
  enabled?: boolean;
}

/** One schedule of a function, checked: plain data, so that definitions compare as JSON. */
export interface ScheduleDef {
  readonly name: string;
  readonly type: ScheduleType;
  readonly expression: string;
  /** IANA; `UTC` unless a cron schedule names another. */
  readonly timezone: string;
  readonly input: Readonly<Record<string, unknown>>;
  readonly enabled: boolean;
  /** interval: the period; it fires at every multiple of it since the Unix epoch. */
  readonly intervalMs?: number;
  /** one_time: when it fires, in epoch milliseconds. */
  readonly at?: number;
}

export type ParsedSchedules = { ok: true; schedules: ScheduleDef[] } | { ok: false; problems: string[] };

export const DEFAULT_TIMEZONE = 'UTC';
const MIN_INTERVAL_MS = 1000;
const CRON_NAMES = ['@hourly', '@daily', '@weekly', '@monthly', '@yearly', '@annually', '@midnight'];
const CRON_RULE = `write 5 fields (minute hour day-of-month month day-of-week), 6 with seconds first, or one of ${CRON_NAMES.join(', ')}`;
/** RFC 3339 section 5.6: date "T" time, fraction optional, then "Z" or a numeric offset ("T" and "Z" in either case). */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;
/** A date and time without an offset: the mistake worth naming. */
const LOCAL_TIME = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/;
const RFC3339_RULE = 'write an RFC 3339 time with an offset, such as 2026-05-01T10:00:00Z or 2026-05-01T12:00:00+02:00';

/** What one schedule type adds to a ScheduleDef, or why its expression is wrong. */
type Reading = { intervalMs?: number; at?: number } | { problem: string };

/** Per schedule type: how its expression is read, why it takes no timezone, and its fire times. */
interface ScheduleTypeRow {
  read: (expression: string, timezone: string) => Reading;
  /** Why a timezone is refused; null when the type takes one. */
  noTimezone: string | null;
  next: (def: ScheduleDef, afterMs: number) => number | null;
  latest: (def: ScheduleDef, atOrBeforeMs: number) => number | null;
}

const SCHEDULE_TYPES: Record<ScheduleType, ScheduleTypeRow> = {
  cron: {
    read: readCron,
    noTimezone: null,
    next: (def, afterMs) => cronOf(def).nextRun(new Date(afterMs))?.getTime() ?? null,
    // croner's previous runs are strictly before the reference, to the millisecond.
    latest: (def, atOrBeforeMs) => cronOf(def).previousRuns(1, new Date(atOrBeforeMs + 1))[0]?.getTime() ?? null,
  },
  interval: {
    read: readInterval,
    noTimezone: 'an interval counts from the Unix epoch, the same in every zone: remove timezone',
    next: (def, afterMs) => (Math.floor(afterMs / field(def, 'intervalMs')) + 1) * field(def, 'intervalMs'),
    latest: (def, atOrBeforeMs) => Math.floor(atOrBeforeMs / field(def, 'intervalMs')) * field(def, 'intervalMs'),
  },
  one_time: {
    read: readOneTime,
    noTimezone: 'a one_time expression carries its own offset: write the offset into the time and remove timezone',
    next: (def, afterMs) => (field(def, 'at') > afterMs ? field(def, 'at') : null),
    latest: (def, atOrBeforeMs) => (field(def, 'at') <= atOrBeforeMs ? field(def, 'at') : null),
  },
};

/**
 * Checks one manifest's schedules (SPEC §12). Every problem names the schedule by its index and
 * name, says what is wrong and what to do; one problem makes the whole list invalid.
 */
export function parseSchedules(schedules: readonly ManifestSchedule[] | undefined): ParsedSchedules {
  const problems: string[] = [];
  const defs: ScheduleDef[] = [];
  const firstIndex = new Map<string, number>();
  (schedules ?? []).forEach((schedule, index) => {
    const at = `schedules[${index}] "${schedule.name}"`;
    const earlier = firstIndex.get(schedule.name);
    if (earlier !== undefined) {
      problems.push(`${at}: the name is already used by schedules[${earlier}]: give each schedule of a function its own name`);
      return;
    }
    firstIndex.set(schedule.name, index);
    const type = SCHEDULE_TYPES[schedule.type];
    if (schedule.timezone !== undefined && type.noTimezone !== null) {
      problems.push(`${at}: timezone is only for cron schedules (${type.noTimezone})`);
      return;
    }
    const timezone = schedule.timezone ?? DEFAULT_TIMEZONE;
    const zoneProblem = checkTimezone(timezone);
    if (zoneProblem) {
      problems.push(`${at}: ${zoneProblem}`);
      return;
    }
    const reading = type.read(schedule.expression, timezone);
    if ('problem' in reading) {
      problems.push(`${at}: ${reading.problem}`);
      return;
    }
    defs.push({
      name: schedule.name,
      type: schedule.type,
      expression: schedule.expression,
      timezone,
      input: schedule.config?.input ?? {},
      enabled: schedule.enabled ?? true,
      ...reading,
    });
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, schedules: defs };
}

/** The first fire time strictly after `afterMs`, or null when there is none. */
export function nextFireAt(def: ScheduleDef, afterMs: number): number | null {
  return SCHEDULE_TYPES[def.type].next(def, afterMs);
}

/** The most recent fire time at or before `atOrBeforeMs`, or null when there is none. */
export function latestFireAt(def: ScheduleDef, atOrBeforeMs: number): number | null {
  return SCHEDULE_TYPES[def.type].latest(def, atOrBeforeMs);
}

/** A field its type always has, when the def came from parseSchedules. */
function field(def: ScheduleDef, name: 'intervalMs' | 'at'): number {
  const value = def[name];
  if (value === undefined) throw new TypeError(`schedule "${def.name}" of type ${def.type} has no ${name}: build it with parseSchedules`);
  return value;
}

/** A ScheduleDef is plain data; its parsed pattern is kept beside it, not in it. */
const crons = new WeakMap<ScheduleDef, Cron>();

function cronOf(def: ScheduleDef): Cron {
  let cron = crons.get(def);
  if (!cron) {
    cron = newCron(def.expression, def.timezone);
    crons.set(def, cron);
  }
  return cron;
}

/** A croner job that only computes times: paused, and without a function it never sets a timer. */
function newCron(expression: string, timezone: string): Cron {
  return new Cron(expression, { timezone, paused: true, mode: '5-or-6-parts' });
}

function readCron(expression: string, timezone: string): Reading {
  const invalid = (why: string): Reading => ({
    problem: `expression ${JSON.stringify(expression)} is not a valid cron expression (${why}): ${CRON_RULE}`,
  });
  const trimmed = expression.trim();
  if (trimmed.startsWith('@')) {
    if (!CRON_NAMES.includes(trimmed.toLowerCase())) return invalid(`unknown name ${trimmed}`);
  } else {
    const fields = trimmed === '' ? 0 : trimmed.split(/\s+/).length;
    if (fields !== 5 && fields !== 6) return invalid(`it has ${fields} field${fields === 1 ? '' : 's'}`);
  }
  let cron: Cron;
  try {
    cron = newCron(expression, timezone);
  } catch (error) {
    return invalid((error instanceof Error ? error.message : String(error)).replace(/^CronPattern: /, '').replace(/\.$/, ''));
  }
  // Years are wildcards: a pattern that matches no time after the epoch never matches any.
  if (cron.nextRun(new Date(0)) === null) {
    return { problem: `expression ${JSON.stringify(expression)} never fires (no date matches its day and month fields): change them` };
  }
  return {};
}

function readInterval(expression: string): Reading {
  const ms = parseDuration(expression);
  if (ms === undefined) {
    return { problem: `expression ${JSON.stringify(expression)} is not a valid interval: write a duration such as 30s, 5m or 1h (a plain number is seconds)` };
  }
  if (ms < MIN_INTERVAL_MS) {
    return { problem: `expression ${JSON.stringify(expression)} is shorter than the shortest interval, 1s: write 1s or more` };
  }
  return { intervalMs: ms };
}

function readOneTime(expression: string): Reading {
  const at = parseRfc3339(expression);
  if (typeof at === 'string') {
    return { problem: `expression ${JSON.stringify(expression)} is not an RFC 3339 time with an offset (${at}): ${RFC3339_RULE}` };
  }
  return { at };
}

/** Epoch milliseconds of an RFC 3339 date-time with an offset, or why it is not one. */
function parseRfc3339(text: string): number | string {
  const match = RFC3339.exec(text);
  if (!match) return LOCAL_TIME.test(text) ? 'it has no offset' : 'not of the form YYYY-MM-DDTHH:MM:SS then Z or ±HH:MM';
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number);
  const ms = match[7] ? Math.floor(Number(match[7]) * 1000) : 0;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, ms);
  const fields = [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate(), date.getUTCHours(), date.getUTCMinutes(), date.getUTCSeconds()];
  if (fields.some((value, index) => value !== [year, month, day, hour, minute, second][index])) return 'no such date or time';
  if (match[8]) return date.getTime();
  const [offsetHours, offsetMinutes] = [Number(match[10]), Number(match[11])];
  if (offsetHours > 23 || offsetMinutes > 59) return `no such offset ${match[9]}${match[10]}:${match[11]}`;
  return date.getTime() - (match[9] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000;
}

/** Why `timezone` is not an IANA zone this Node knows, or null when it is one. */
function checkTimezone(timezone: string): string | null {
  const problem = `timezone ${JSON.stringify(timezone)} is not an IANA time zone: use a name such as Europe/Berlin, America/New_York or UTC`;
  // Newer engines take UTC offsets as zones too; the SPEC asks for names, so refuse them everywhere.
  if (/^[+-]/.test(timezone.trim())) return problem;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    return null;
  } catch {
    return problem;
  }
}
