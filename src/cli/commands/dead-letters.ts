import fs from 'node:fs';
import { describeDeadLetter } from '../../background/describe';
import { DeadLetterNotFoundError, UsageError } from '../../errors';
import { isSharedStore, openStateStore } from '../../state/open-store';
import { STATE_ID_PATTERN, type StateStore } from '../../state/store';
import { formatTable } from '../../text-table';
import { loadContext, type ProjectOptions } from '../context';

export interface DeadLettersOptions extends ProjectOptions {
  json?: boolean;
}

/** `alyx dead-letters [retry ID | drop ID]`: works on the state store itself; no server needs to run. */
export async function deadLettersCommand(action: string | undefined, id: string | undefined, options: DeadLettersOptions): Promise<void> {
  if (action !== undefined && action !== 'retry' && action !== 'drop') {
    throw new UsageError(`Unknown action "${action}": use "alyx dead-letters", "alyx dead-letters retry ID" or "alyx dead-letters drop ID".`);
  }
  if (action && (id === undefined || !STATE_ID_PATTERN.test(id))) {
    throw new UsageError(`"alyx dead-letters ${action}" needs the dead letter's id (1 to 128 letters, digits, ".", "_" and "-", not starting with "."): see "alyx dead-letters".`);
  }
  const { config } = loadContext(options, undefined, 2);
  if (!action && !isSharedStore(config) && !fs.existsSync(config.state.url)) {
    print(options.json, [], config.state.url);
    return;
  }
  const store = await openStateStore(config);
  try {
    if (action === 'retry') {
      const record = await store.retryDeadLetter(id as string);
      if (!record) throw new DeadLetterNotFoundError(id as string);
      process.stdout.write(`${record.requestId} (${record.function}) is queued again: it runs on the next alyx that serves this project\n`);
    } else if (action === 'drop') {
      if (!(await store.dropDeadLetter(id as string))) throw new DeadLetterNotFoundError(id as string);
      process.stdout.write(`dropped dead letter ${id}\n`);
    } else {
      print(options.json, await listed(store), store.location);
    }
  } finally {
    await store.close();
  }
}

async function listed(store: StateStore): Promise<Array<Record<string, unknown>>> {
  return (await store.listDeadLetters()).map(describeDeadLetter);
}

function print(json: boolean | undefined, letters: Array<Record<string, unknown>>, location: string): void {
  if (json || !process.stdout.isTTY) {
    process.stdout.write(`${JSON.stringify({ dead_letters: letters, count: letters.length }, null, 2)}\n`);
    return;
  }
  if (letters.length === 0) {
    process.stdout.write(`No dead letters in ${location}.\n`);
    return;
  }
  const rows = letters.map((letter) => {
    const error = letter.error as { code?: string; message?: string } | null;
    return [String(letter.id), String(letter.function), String(letter.attempts), String(letter.failed_at), `${error?.code ?? ''}: ${error?.message ?? ''}`.slice(0, 80)];
  });
  process.stdout.write(`${formatTable(['ID', 'FUNCTION', 'ATTEMPTS', 'FAILED AT', 'ERROR'], rows)}\n`);
}
