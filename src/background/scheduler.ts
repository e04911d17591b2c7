import { createHash, randomUUID } from 'node:crypto';
import { ScheduleNotFoundError } from '../errors';
import type { FunctionRegistry } from '../functions/registry';
import { latestFireAt, nextFireAt, type ScheduleDef } from '../functions/schedules';
import type { Logger } from '../logger';
import type { InvocationRecord, NewInvocation, ScheduleKey, StateStore } from '../state/store';

export interface SchedulerOptions {
  readonly store: StateStore;
  readonly registry: FunctionRegistry;
  readonly logger: Logger;
  /** Whether schedules fire by themselves (production, or dev.schedules); otherwise only on request. */
  readonly fires: boolean;
  /** Told when a fire queued an invocation. */
  readonly onQueued: () => void;
}

/** The longest the scheduler sleeps between looks: a clock that jumped, a reload, are noticed within it. */
const MAX_SLEEP_MS = 5000;

/**
 * Fires each enabled schedule's fire times as background invocations (SPEC §12). The store
 * decides, in one transaction, whether a fire time already ran: exactly once per fire time,
 * whichever process asks first. A schedule seen for the first time starts from now; fire times
 * missed while no alyx ran are made up once, by running the latest of them.
 */
export class Scheduler {
  readonly #options: SchedulerOptions;
  #timer: NodeJS.Timeout | null = null;
  #ticking: Promise<void> | null = null;
  #stopped = false;
  #startedAt = Date.now();

  constructor(options: SchedulerOptions) {
    this.#options = options;
  }

  start(): void {
    this.#startedAt = Date.now();
    if (this.#options.fires) void this.#tick();
  }

  /** The schedules may have changed (a reload): look again now. */
  refresh(): void {
    if (this.#options.fires && !this.#stopped) void this.#tick();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
  }

  async #tick(): Promise<void> {
    if (this.#ticking) return this.#ticking;
    if (this.#timer) clearTimeout(this.#timer);
    this.#ticking = this.#fireDue()
      .catch((error: unknown) => this.#options.logger.error({ err: error }, 'schedules: the state store failed; trying again shortly'))
      .finally(() => {
        this.#ticking = null;
        this.#arm();
      });
    return this.#ticking;
  }

  async #fireDue(): Promise<void> {
    const { store, logger } = this.#options;
    const now = Date.now();
    const runs = new Map((await store.scheduleRuns()).map((run) => [keyOf(run), run]));
    for (const { functionName, schedule } of enabledSchedules(this.#options.registry)) {
      if (this.#stopped) return;
      const key = { function: functionName, name: schedule.name };
      const lastFireAt = runs.get(keyOf(key))?.lastFireAt ?? null;
      const latest = latestFireAt(schedule, now);
      // Seen for the first time: its past is not made up, except a one_time's (it would never run).
      if (lastFireAt === null && schedule.type !== 'one_time') {
        await store.registerSchedule(key, latest ?? now);
        continue;
      }
      if (latest === null || (lastFireAt !== null && latest <= lastFireAt)) continue;
      if (await store.fireSchedule(key, latest, fireInvocation(functionName, schedule, latest), now)) {
        // A fire time before this process started was missed while no alyx ran it.
        const madeUp = latest < this.#startedAt;
        logger.info(
          { function: functionName, schedule: schedule.name, scheduled_at: new Date(latest).toISOString(), made_up: madeUp },
          `schedule ${functionName}/${schedule.name} fired for ${new Date(latest).toISOString()}${madeUp ? ', made up at start' : ''}`,
        );
        this.#options.onQueued();
      }
    }
  }

  #arm(): void {
    if (this.#stopped) return;
    const now = Date.now();
    let next = now + MAX_SLEEP_MS;
    for (const { schedule } of enabledSchedules(this.#options.registry)) {
      const at = nextFireAt(schedule, now);
      if (at !== null && at < next) next = at;
    }
    this.#timer = setTimeout(() => void this.#tick(), Math.max(0, next - now));
    this.#timer.unref();
  }
}

/** Every enabled schedule of the functions as discovered now. */
function enabledSchedules(registry: FunctionRegistry): Array<{ functionName: string; schedule: ScheduleDef }> {
  return registry.list().flatMap(({ def }) => def.schedules.filter((schedule) => schedule.enabled).map((schedule) => ({ functionName: def.name, schedule })));
}

export function keyOf(key: ScheduleKey): string {
  return `${key.function}/${key.name}`;
}

/** One fire time's invocation. Its request id follows from the fire time, so the same time is the same invocation everywhere. */
function fireInvocation(functionName: string, schedule: ScheduleDef, fireAt: number): NewInvocation {
  const digest = createHash('sha256').update(`${functionName}\0${schedule.name}\0${fireAt}`).digest('hex').slice(0, 32);
  return {
    requestId: `schedule-${digest}`,
    function: functionName,
    input: schedule.input,
    trigger: { type: 'schedule', schedule: schedule.name, scheduled_at: new Date(fireAt).toISOString() },
    callbackUrl: null,
  };
}

/** `alyx schedules run FUNCTION/NAME` and its HTTP twin: one fire now, queued like any other. */
export async function queueScheduleNow(store: StateStore, registry: FunctionRegistry, spec: string, now = Date.now()): Promise<InvocationRecord> {
  const slash = spec.indexOf('/');
  const functionName = spec.slice(0, slash);
  const name = spec.slice(slash + 1);
  const schedule = slash > 0 ? registry.get(functionName)?.def.schedules.find((each) => each.name === name) : undefined;
  if (!schedule) throw new ScheduleNotFoundError(spec);
  return store.runScheduleNow(
    { function: functionName, name },
    {
      requestId: randomUUID(),
      function: functionName,
      input: schedule.input,
      trigger: { type: 'schedule', schedule: name, scheduled_at: new Date(now).toISOString(), on_request: true },
      callbackUrl: null,
    },
    now,
  );
}
