import type { FunctionRegistry } from '../functions/registry';
import { nextFireAt } from '../functions/schedules';
import type { DeadLetter, InvocationRecord, ScheduleRun } from '../state/store';
import { keyOf } from './scheduler';

/** Background state as the HTTP API and the CLI show it (SPEC §11): snake_case fields, ISO times. */

/** The body of GET /api/invocations/:id. */
export function describeInvocation(record: InvocationRecord): Record<string, unknown> {
  return {
    request_id: record.requestId,
    function: record.function,
    status: record.status,
    attempts: record.attempts,
    created_at: iso(record.createdAt),
    started_at: iso(record.startedAt),
    finished_at: iso(record.finishedAt),
    ...(record.status === 'failed' ? { retry_at: iso(record.runAt) } : {}),
    envelope: record.envelope ?? undefined,
  };
}

/** One entry of GET /api/dead-letters. */
export function describeDeadLetter(letter: DeadLetter): Record<string, unknown> {
  return {
    id: letter.id,
    request_id: letter.requestId,
    function: letter.function,
    attempts: letter.attempts,
    error: letter.error,
    failed_at: iso(letter.failedAt),
  };
}

/** The answer to a request that queued an invocation: 202's body, and what `alyx invoke --async` prints. */
export function describeQueued(record: InvocationRecord): Record<string, unknown> {
  return { request_id: record.requestId, status: record.status, status_url: `/api/invocations/${encodeURIComponent(record.requestId)}` };
}

/** GET /api/schedules and `alyx schedules`: every schedule with its next and last run. */
export function describeSchedules(registry: FunctionRegistry, runs: readonly ScheduleRun[], now = Date.now()): Array<Record<string, unknown>> {
  const byKey = new Map(runs.map((run) => [keyOf(run), run]));
  return registry.list().flatMap(({ def }) =>
    def.schedules.map((schedule) => {
      const run = byKey.get(keyOf({ function: def.name, name: schedule.name }));
      const next = schedule.enabled ? nextFireAt(schedule, now) : null;
      return {
        function: def.name,
        name: schedule.name,
        type: schedule.type,
        expression: schedule.expression,
        timezone: schedule.timezone,
        enabled: schedule.enabled,
        next_run: next === null ? null : new Date(next).toISOString(),
        last_run: run?.lastRunAt ? new Date(run.lastRunAt).toISOString() : null,
        last_status: run?.lastStatus ?? null,
      };
    }),
  );
}

function iso(ms: number | null): string | undefined {
  return ms === null ? undefined : new Date(ms).toISOString();
}
