import { describeAll, type FunctionDescription } from '../../functions/describe';
import { loadSnapshot } from '../../functions/registry';
import { loadContext, modeFromFlags, type ProjectOptions } from '../context';
import { processStartNote } from '../../process/native-process';
import { formatTable } from '../../text-table';
import { noFunctionsMessage } from '../../server/startup-report';

export interface ListOptions extends ProjectOptions {
  json?: boolean;
}

/** `alyx list`: each function, its status and what would run, in the mode `alyx serve` would use. */
export async function listCommand(options: ListOptions): Promise<void> {
  const { config } = loadContext(options, modeFromFlags(options), 2);
  const snapshot = loadSnapshot(config);
  const body = describeAll(snapshot.functions.values(), config);
  if (options.json) {
    process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    return;
  }
  if (body.count === 0) {
    const message = noFunctionsMessage(config);
    process.stdout.write(`${message[0].toUpperCase()}${message.slice(1)}.\n`);
    return;
  }
  const rows = body.functions.map((fn) => [
    fn.name,
    fn.runtime ?? '-',
    fn.status,
    fn.entry ?? '-',
    String(fn.schedules?.length ?? '-'),
    routesOf(fn),
    fn.command ? fn.command.join(' ') : (fn.message ?? ''),
  ]);
  process.stdout.write(`${config.mode} mode, ${config.functions.path}\n\n`);
  process.stdout.write(`${formatTable(['NAME', 'RUNTIME', 'STATUS', 'ENTRY', 'SCHEDULES', 'ROUTES', 'RUNS'], rows)}\n`);
  const ready = body.functions.filter((fn) => fn.status === 'ready').length;
  process.stdout.write(`\n${ready} of ${body.count} ready\n`);
  const shims = new Map(body.functions.filter((fn) => fn.shim && fn.command).map((fn) => [fn.shim as string, (fn.command as string[])[0]]));
  for (const [shim, real] of shims) process.stdout.write(`${shim} is a shim: alyx runs ${real}\n`);
  process.stdout.write(`${processStartNote()}\n`);
}

/** Its routes and webhook paths, as people read them; "-" when it has none. */
function routesOf(fn: FunctionDescription): string {
  const paths = [...(fn.routes ?? []).map((route) => route.path), ...(fn.webhooks ?? []).map((hook) => `${hook.path} (webhook)`)];
  return paths.length > 0 ? paths.join(' ') : '-';
}
