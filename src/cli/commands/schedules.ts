import fs from 'node:fs';
import { describeSchedules } from '../../background/describe';
import { queueScheduleNow } from '../../background/scheduler';
import { UsageError } from '../../errors';
import { FunctionRegistry, loadSnapshot } from '../../functions/registry';
import { isSharedStore, openStateStore } from '../../state/open-store';
import type { ScheduleRun } from '../../state/store';
import { formatTable } from '../../text-table';
import { loadContext, modeFromFlags, type ProjectOptions } from '../context';

export interface SchedulesOptions extends ProjectOptions {
  json?: boolean;
}

/** `alyx schedules [run FUNCTION/NAME]`: lists the schedules, or queues one fire now into the state store. */
export async function schedulesCommand(action: string | undefined, spec: string | undefined, options: SchedulesOptions): Promise<void> {
  if (action !== undefined && action !== 'run') throw new UsageError(`Unknown action "${action}": use "alyx schedules" or "alyx schedules run FUNCTION/NAME".`);
  if (action && !spec?.includes('/')) throw new UsageError('"alyx schedules run" needs FUNCTION/NAME, such as "alyx schedules run reports/nightly": see "alyx schedules".');
  const { config } = loadContext(options, modeFromFlags(options), 2);
  const registry = new FunctionRegistry(() => loadSnapshot(config));
  if (action === 'run') {
    const store = await openStateStore(config);
    try {
      const record = await queueScheduleNow(store, registry, spec as string);
      process.stdout.write(`${JSON.stringify({ request_id: record.requestId, status: record.status, function: record.function }, null, 2)}\n`);
    } finally {
      await store.close();
    }
    return;
  }
  let runs: ScheduleRun[] = [];
  if (isSharedStore(config) || fs.existsSync(config.state.url)) {
    const store = await openStateStore(config);
    try {
      runs = await store.scheduleRuns();
    } finally {
      await store.close();
    }
  }
  const schedules = describeSchedules(registry, runs);
  if (options.json || !process.stdout.isTTY) {
    process.stdout.write(`${JSON.stringify({ schedules }, null, 2)}\n`);
    return;
  }
  if (schedules.length === 0) {
    process.stdout.write('No schedules: add schedules: to a function\'s manifest.yaml (see docs/schedules.md).\n');
    return;
  }
  const rows = schedules.map((each) => [
    `${each.function}/${each.name}`,
    String(each.type),
    String(each.expression),
    String(each.timezone),
    each.enabled ? 'yes' : 'no',
    String(each.next_run ?? '-'),
    String(each.last_run ?? '-'),
    String(each.last_status ?? '-'),
  ]);
  process.stdout.write(`${formatTable(['SCHEDULE', 'TYPE', 'EXPRESSION', 'TIMEZONE', 'ENABLED', 'NEXT RUN', 'LAST RUN', 'LAST STATUS'], rows)}\n`);
  if (config.mode === 'development' && !config.dev.schedules) process.stdout.write('\nIn development schedules fire only on request ("alyx schedules run FUNCTION/NAME"), or by themselves with dev.schedules: true.\n');
}
