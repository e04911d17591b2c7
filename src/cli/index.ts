import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { AlyxError, ConfigError, UsageError } from '../errors';
import { TEMPLATE_RUNTIMES } from './templates';
import { version } from './version';

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

/** Adds the options every command that reads a project shares. */
function projectOptions(command: Command): Command {
  return command
    .option('-C, --cwd <dir>', 'project folder (alyx.yaml is read from it)')
    .option('-c, --config <file>', 'configuration file, relative to the project folder', undefined)
    .option('--functions <path>', 'functions folder (functions.path)');
}

function serverOptions(command: Command): Command {
  return projectOptions(command)
    .option('-p, --port <port>', 'port to listen on (server.port; 0 picks a free one)')
    .option('--host <host>', 'address to listen on (server.host)');
}

function modeOptions(command: Command): Command {
  return command
    .option('--prod', 'production mode: build outputs')
    .option('--dev', 'development mode: sources');
}

function buildProgram(): Command {
  const program = new Command('alyx')
    .description('Host polyglot serverless functions over HTTP: from source in development, from build output in production.')
    .version(version(), '-v, --version')
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error']))
    .addOption(new Option('--log-format <format>', 'log format').choices(['pretty', 'json']))
    .showHelpAfterError('(run "alyx --help" for usage)')
    .exitOverride()
    .hook('preAction', (_program, command) => checkProjectDir(command.optsWithGlobals<{ cwd?: string }>().cwd));
  // Also accepted before the command, as with git -C.
  projectOptions(program);

  serverOptions(program.command('dev').description('serve the functions from source, with a file watcher'))
    .option('--no-watch', 'do not watch files')
    .action(async (_options, command: Command) => {
      await prepareToRunFunctions();
      const { serveCommand } = await import('./commands/serve');
      await serveCommand(command.optsWithGlobals(), 'development');
    });

  serverOptions(program.command('serve').description('serve the functions: production unless dev.enabled'))
    .option('--strict', 'exit 1 at startup if any function is not ready')
    .action(async (_options, command: Command) => {
      await prepareToRunFunctions();
      const { serveCommand } = await import('./commands/serve');
      await serveCommand(command.optsWithGlobals());
    });

  modeOptions(
    projectOptions(
      program
        .command('list')
        .description('list the functions, their status and what would run')
        .option('--json', 'print the body of GET /api/functions'),
    ),
  ).action(async (_options, command: Command) => {
    const { listCommand } = await import('./commands/list');
    await listCommand(command.optsWithGlobals());
  });

  modeOptions(
    projectOptions(
      program
        .command('invoke')
        .description('run one invocation without a server and print its envelope')
        .argument('<name>', 'function name')
        .option('-d, --data <json>', 'input: a JSON object, @file, or - for standard input')
        .option('--json', 'print the envelope as JSON even on a terminal (it always is when piped)')
        .option('--async', 'queue a background invocation in the state store instead; the next alyx that serves the project runs it'),
    ),
  ).action(async (name: string, options: { async?: boolean }, command: Command) => {
    if (!options.async) await prepareToRunFunctions();
    const { invokeCommand } = await import('./commands/invoke');
    await invokeCommand(name, command.optsWithGlobals());
  });

  modeOptions(
    projectOptions(
      program
        .command('schedules')
        .description('list the schedules with their next and last runs, or queue one fire now')
        .argument('[action]', '"run" to queue one fire now')
        .argument('[schedule]', 'FUNCTION/NAME, with run')
        .option('--json', 'print the body of GET /api/schedules'),
    ),
  ).action(async (action: string | undefined, spec: string | undefined, _options, command: Command) => {
    const { schedulesCommand } = await import('./commands/schedules');
    await schedulesCommand(action, spec, command.optsWithGlobals());
  });

  projectOptions(
    program
      .command('dead-letters')
      .description('list the background invocations that failed for good, queue one again, or drop one')
      .argument('[action]', '"retry" or "drop"')
      .argument('[id]', "the dead letter's id, with retry or drop")
      .option('--json', 'print the body of GET /api/dead-letters'),
  ).action(async (action: string | undefined, id: string | undefined, _options, command: Command) => {
    const { deadLettersCommand } = await import('./commands/dead-letters');
    await deadLettersCommand(action, id, command.optsWithGlobals());
  });

  projectOptions(
    program
      .command('build')
      .description('install what each function needs, then run its build: all functions, or the named ones')
      .option('--no-install', 'skip installing (npm ci, a python .venv from requirements.txt, go mod download)')
      .argument('[names...]', 'function names'),
  ).action(async (names: string[], _options, command: Command) => {
    const { buildCommand } = await import('./commands/build');
    await buildCommand(names, command.optsWithGlobals());
  });

  projectOptions(
    program
      .command('new')
      .description('scaffold a working function')
      .argument('<name>', 'function name (the folder under functions/)')
      .addOption(new Option('--runtime <runtime>', 'language of the function (asked on a terminal, else node)').choices([...TEMPLATE_RUNTIMES])),
  ).action(async (name: string, _options, command: Command) => {
    const { newCommand } = await import('./commands/new');
    await newCommand(name, command.optsWithGlobals());
  });

  return program;
}

/** -C/--cwd must name an existing folder: every command reads or writes the project there. */
function checkProjectDir(dir: string | undefined): void {
  if (dir === undefined) return;
  let isFolder: boolean;
  try {
    isFolder = fs.statSync(dir).isDirectory();
  } catch {
    throw new UsageError(`${path.resolve(dir)}: no such folder (given with -C/--cwd): give the project folder, the one that holds functions/.`);
  }
  if (!isFolder) throw new UsageError(`${path.resolve(dir)} is not a folder (given with -C/--cwd): give the project folder, the one that holds functions/.`);
}

/** For the commands that run functions: see functions/hosting.ts. */
async function prepareToRunFunctions(): Promise<void> {
  const { prepareToRunFunctions: prepare } = await import('../host/prepare');
  prepare();
}

/** Runs the CLI. Sets process.exitCode rather than exiting, so logs flush. */
export async function main(argv: string[]): Promise<void> {
  ignoreClosedStdout();
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    process.exitCode = exitCodeFor(error);
  }
}

/** `alyx list | head`: a reader that stops reading is normal for a command-line tool, not a crash. */
function ignoreClosedStdout(): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
}

function exitCodeFor(error: unknown): number {
  if (error instanceof CommanderError) {
    // Commander has already printed its message (or the help / version).
    return error.exitCode === 0 ? 0 : EXIT_USAGE;
  }
  if (error instanceof AlyxError) {
    process.stderr.write(`alyx: ${error.message}\n`);
    return error instanceof ConfigError || error instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE;
  }
  process.stderr.write(`alyx: unexpected error, please report it:\n${(error as Error)?.stack ?? String(error)}\n`);
  return EXIT_FAILURE;
}
