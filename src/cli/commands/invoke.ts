import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { AlyxConfig } from '../../config/resolve';
import { FunctionNotFoundError, UsageError } from '../../errors';
import { describeQueued } from '../../background/describe';
import { openStateStore } from '../../state/open-store';
import { Invoker, toEnvelope } from '../../invoke/invoker';
import { parseInputText } from '../../invoke/json-input';
import { FunctionRegistry, loadSnapshot, notReadyError } from '../../functions/registry';
import { loadContext, modeFromFlags, type ProjectOptions } from '../context';
import { formatForTerminal } from '../invoke-output';

export interface InvokeCommandOptions extends ProjectOptions {
  data?: string;
  json?: boolean;
  async?: boolean;
}

/** `alyx invoke NAME`: one invocation without a server; prints the envelope, or on a terminal the output readably. */
export async function invokeCommand(name: string, options: InvokeCommandOptions): Promise<void> {
  const input = parseInput(options.data, options.cwd ?? process.cwd());
  const { config, logger } = loadContext(options, modeFromFlags(options), 2);
  const registry = new FunctionRegistry(() => loadSnapshot(config));
  if (options.async) {
    await queueInvocation(config, registry, name, input);
    return;
  }
  const invoker = new Invoker(config, registry, logger);
  const result = await invoker.invoke(name, input);
  // A function in reuse mode leaves its process waiting for the next request: it is ended here.
  await invoker.close();
  const readable = process.stdout.isTTY && !options.json;
  process.stdout.write(readable ? formatForTerminal(result) : `${JSON.stringify(toEnvelope(result), null, 2)}\n`);
  process.exitCode = result.success ? 0 : 1;
}

/** --async: stores the invocation for the next alyx that serves the project (SPEC §11); no server needs to run. */
async function queueInvocation(config: AlyxConfig, registry: FunctionRegistry, name: string, input: Record<string, unknown>): Promise<void> {
  const registered = registry.get(name);
  if (!registered) throw new FunctionNotFoundError(name);
  const notReady = notReadyError(registered);
  if (notReady) throw notReady;
  const store = await openStateStore(config);
  try {
    const { record } = await store.enqueue({ requestId: randomUUID(), function: name, input, trigger: { type: 'async' }, callbackUrl: null });
    process.stdout.write(`${JSON.stringify(describeQueued(record), null, 2)}\n`);
  } finally {
    await store.close();
  }
}

/** --data JSON, @file, or - for stdin; absent means {}. It must be a JSON object. */
function parseInput(data: string | undefined, baseDir: string): Record<string, unknown> {
  if (data === undefined) return {};
  let text = data;
  let source = '--data';
  if (data === '-') {
    text = fs.readFileSync(0, 'utf8');
    source = 'standard input';
  } else if (data.startsWith('@')) {
    const file = path.resolve(baseDir, data.slice(1));
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (error) {
      throw new UsageError(`Cannot read ${file} (${(error as NodeJS.ErrnoException).code}): give --data @FILE an existing JSON file.`);
    }
    source = file;
  }
  const parsed = parseInputText(text);
  if (parsed.ok) return parsed.value;
  if (parsed.problem === 'not_json') throw new UsageError(`${source} is not valid JSON (${parsed.reason}): pass an object such as '{"name": "World"}'.`);
  if (parsed.problem === 'too_deep') throw new UsageError(`${source} is nested too deeply: ${parsed.reason}. Flatten it.`);
  throw new UsageError(`${source} must be a JSON object such as '{"name": "World"}', not ${parsed.reason}.`);
}
