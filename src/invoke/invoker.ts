import { randomUUID } from 'node:crypto';
import type { AlyxConfig } from '../config/resolve';
import { serverUrl } from '../config/server-url';
import { AlyxError, ExecutionError, FunctionNotFoundError, FunctionNotReadyError } from '../errors';
import type { Logger } from '../logger';
import { buildFunctionEnv } from './environment';
import { exceedsDepth, MAX_JSON_DEPTH } from './json-input';
import { encodeRequest, type FunctionErrorBody } from '../protocol/protocol';
import { InternalCalls } from './internal-calls';
import { ConcurrencyLimiter } from './limiter';
import { argsWithPreload, PYTHON_HELPER_DIR } from './preload';
import type { ProcessPool } from '../process/pool';
import { ResidentPool } from '../process/resident-pool';
import type { ResidentSpec } from '../process/resident';
import type { FunctionRegistry, FunctionSnapshot, RegisteredFunction } from '../functions/registry';
import { runProcess, type RunResult, type SpawnSpec } from '../process/runner';
import { whyNotRunnable } from '../functions/still-runnable';

export interface InvokerHooks {
  /** Development: an invocation of a function that runs its build output waits for its build. */
  readonly waitForBuild?: (name: string) => Promise<void>;
  /** Warm processes (the server's); without one every invocation spawns its own process. */
  readonly pool?: ProcessPool;
  /** Reuse processes (the server's); without one the invoker keeps its own, ended by close(). */
  readonly residents?: ResidentPool;
}

export interface InvokeOptions {
  /** Reused when given (a valid X-Request-Id); otherwise a fresh UUID. */
  readonly requestId?: string;
  /** Ends the invocation early: client gone, server shutting down. */
  readonly signal?: AbortSignal;
  /** context.trigger: what started it; default `{type: "cli"}`. */
  readonly trigger?: Readonly<{ type: string } & Record<string, unknown>>;
  /** context.attempt; default 1. */
  readonly attempt?: number;
  /**
   * Called once the invocation holds no slot of the limiter any more: after its process and
   * what it left behind are gone, which can be after the answer; at once when it never took one.
   */
  readonly onSlotFreed?: () => void;
  /** context.auth: the verified identity of the caller (SPEC §13); default null. */
  readonly auth?: unknown;
  /** How deep in a chain of internal calls this invocation is (0: a client started it). */
  readonly callDepth?: number;
  /**
   * A synchronous internal call: it waits for its own function's concurrency only, never for the
   * global limit, since its caller holds a slot while it waits, and callers filling every slot
   * must not deadlock.
   */
  readonly callerWaits?: boolean;
}

/** The outcome of one invocation, whether the function or alyx produced it. */
export interface InvocationResult {
  readonly requestId: string;
  readonly functionName: string;
  readonly durationMs: number;
  readonly success: boolean;
  readonly output?: unknown;
  readonly logs: unknown[];
  readonly error?: FunctionErrorBody;
  /** True when the failure is the function's own report (FUNCTION_ERROR or its own code). */
  readonly reportedByFunction: boolean;
  /** The HTTP status a failing function asked for with `error.status`. */
  readonly requestedStatus: number | null;
}

/** The JSON envelope every invocation answers with (SPEC §6). */
export function toEnvelope(result: InvocationResult): Record<string, unknown> {
  const envelope: Record<string, unknown> = { request_id: result.requestId, success: result.success };
  if (result.success) envelope.output = result.output ?? null;
  else envelope.error = result.error;
  envelope.logs = result.logs;
  envelope.duration_ms = result.durationMs;
  return envelope;
}

const CLI_TRIGGER = Object.freeze({ type: 'cli' });

/** Runs functions by name: finds the definition, assembles the request and environment, runs it. */
export class Invoker {
  readonly #config: AlyxConfig;
  readonly #registry: FunctionRegistry;
  readonly #logger: Logger;
  readonly #processEnv: NodeJS.ProcessEnv;
  readonly #limiter: ConcurrencyLimiter;
  readonly #hooks: InvokerHooks;
  /** Per discovered definition: what to spawn, environment included (it only changes on reload). */
  readonly #spawnSpecs = new WeakMap<RegisteredFunction, SpawnSpec>();
  readonly #residentSpecs = new WeakMap<RegisteredFunction, ResidentSpec>();
  /** The internal tokens of running invocations, which the server accepts as bearer tokens. */
  readonly internalCalls = new InternalCalls();
  #ownResidents: ResidentPool | null = null;
  #baseUrl: string;

  constructor(
    config: AlyxConfig,
    registry: FunctionRegistry,
    logger: Logger,
    processEnv: NodeJS.ProcessEnv = process.env,
    hooks: InvokerHooks = {},
  ) {
    this.#config = config;
    this.#registry = registry;
    this.#logger = logger;
    this.#processEnv = processEnv;
    this.#limiter = new ConcurrencyLimiter(config.functions.concurrency, config.functions.queue);
    this.#baseUrl = serverUrl(config.server.tls.enabled, config.server.host, config.server.port);
    this.#hooks = hooks;
  }

  /** The address the server really listens on (port 0 picks one), for context.alyx_url. */
  useBaseUrl(url: string): void {
    this.#baseUrl = url;
  }

  /** Ends the reuse processes the invoker started itself (those of a server are the server's to end). */
  async close(): Promise<void> {
    await this.#ownResidents?.close();
  }

  /** Never rejects: every failure becomes a result with an error code. */
  async invoke(name: string, input: Record<string, unknown>, options: InvokeOptions = {}): Promise<InvocationResult> {
    const requestId = options.requestId ?? randomUUID();
    const started = performance.now();
    const finish = (fields: Omit<InvocationResult, 'requestId' | 'functionName' | 'durationMs'>): InvocationResult => ({
      requestId,
      functionName: name,
      durationMs: Math.round(performance.now() - started),
      ...fields,
    });
    // Refused before a slot was taken, it frees none later: onSlotFreed is told at once.
    let slotTaken = false;
    const failWith = (error: AlyxError, details?: Record<string, unknown>): InvocationResult => {
      if (!slotTaken) options.onSlotFreed?.();
      return finish({ success: false, logs: [], error: errorBody(error, details), reportedByFunction: false, requestedStatus: null });
    };

    await this.#hooks.waitForBuild?.(name);
    // Taken once: a reload while this runs does not change what it runs.
    const snapshot = this.#registry.snapshot;
    const registered = snapshot.functions.get(name);
    if (!registered) return failWith(new FunctionNotFoundError(name));
    const { def, plan } = registered;
    if (plan.status !== 'ready' || !plan.command) {
      return failWith(new FunctionNotReadyError(name, plan.status, plan.message ?? 'it cannot run'));
    }
    // Checked before a process starts: a reuse process already running has its files loaded.
    const starts = !def.reuse || !this.#residents()?.serving(name, registered);
    const gone = starts ? whyNotRunnable(def, plan, this.#config.projectDir) : null;
    if (gone) return failWith(new FunctionNotReadyError(name, 'invalid', gone));

    let release: () => void;
    try {
      const onWait = (): void => this.#logger.debug({ function: name, request_id: requestId, waiting: this.#limiter.waiting }, 'waiting for a free slot');
      release = await this.#limiter.acquire(name, def.concurrency, options.signal, onWait, options.callerWaits === true);
    } catch (error) {
      return failWith(error as AlyxError);
    }
    slotTaken = true;
    const internalToken = this.internalCalls.issue({ functionName: name, requestId, auth: options.auth ?? null, depth: options.callDepth ?? 0 });
    const result = await this.#run(registered, snapshot, requestId, input, options, internalToken);
    // Refused from the answer on: the invocation has ended for whoever called it.
    this.internalCalls.revoke(internalToken);
    // The slot is held until the process and what it left behind are gone, which can be after the answer.
    void result.finished.then(() => {
      release();
      options.onSlotFreed?.();
    });

    if (!result.ok) {
      const showStderr = this.#config.mode === 'development' && result.error.code === 'EXECUTION_ERROR' && result.stderrTail;
      return failWith(result.error, showStderr ? { stderr: result.stderrTail } : undefined);
    }
    const response = result.response;
    // Parsed, it would still fail to encode into the answer (JSON.stringify recurses).
    if (exceedsDepth(response, MAX_JSON_DEPTH + 1)) {
      return failWith(new ExecutionError(`The function's response nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep: flatten its output.`));
    }
    if (response.success) {
      return finish({ success: true, output: response.output, logs: response.logs, reportedByFunction: false, requestedStatus: null });
    }
    return finish({
      success: false,
      logs: response.logs,
      error: response.error,
      reportedByFunction: true,
      requestedStatus: response.status,
    });
  }

  async #run(
    registered: RegisteredFunction,
    snapshot: FunctionSnapshot,
    requestId: string,
    input: Record<string, unknown>,
    { signal, trigger = CLI_TRIGGER, attempt = 1, auth = null }: InvokeOptions,
    internalToken: string,
  ): Promise<RunResult> {
    const { def } = registered;
    const name = def.name;
    // Encoded before a warm process is taken: nothing that can fail stands between taking one and handing it its request.
    const payload = encodeRequest({
      request_id: requestId,
      function: name,
      input,
      context: {
        auth,
        env: { ...this.#config.functions.env, ...def.env },
        alyx_url: this.#baseUrl,
        internal_token: internalToken,
        trigger,
        attempt,
      },
    });
    const timeoutMs = def.timeoutMs ?? this.#config.functions.timeoutMs;
    const logger = this.#logger.child({ function: name, request_id: requestId });
    if (def.reuse) {
      const residents = this.#residents() ?? (this.#ownResidents = new ResidentPool({ logger: this.#logger }));
      return residents.run(name, registered, () => this.#residentSpec(registered, snapshot), { requestId, payload, timeoutMs, signal, logger });
    }
    const spawnSpec = this.#spawnSpec(registered, snapshot);
    const lease = this.#hooks.pool?.acquire(name, registered, def.pool ?? this.#config.functions.pool, () => spawnSpec);
    // runProcess owns the warm process from here on, and never rejects.
    const result = await runProcess(
      {
        ...spawnSpec,
        payload,
        timeoutMs,
        maxOutputBytes: this.#config.functions.maxOutputBytes,
        signal,
        logger,
      },
      lease?.child ?? undefined,
    );
    void result.finished.then(() => lease?.release());
    return result;
  }

  #residents(): ResidentPool | null {
    return this.#hooks.residents ?? this.#ownResidents;
  }

  #spawnSpec(registered: RegisteredFunction, snapshot: FunctionSnapshot): SpawnSpec {
    let spec = this.#spawnSpecs.get(registered);
    if (!spec) {
      const { def, plan } = registered;
      spec = {
        command: plan.command as string,
        args: argsWithPreload(def.runtime, plan),
        cwd: def.dir,
        env: this.#functionEnv(registered, snapshot, false),
        memoryLimitBytes: def.memoryBytes ?? this.#config.functions.memoryLimitBytes,
        warmArgs: argsWithPreload(def.runtime, plan, true),
      };
      this.#spawnSpecs.set(registered, spec);
    }
    return spec;
  }

  /** A reuse process runs the plain command: the preloads only shorten a process's end, which reuse does not wait for. */
  #residentSpec(registered: RegisteredFunction, snapshot: FunctionSnapshot): ResidentSpec {
    let spec = this.#residentSpecs.get(registered);
    if (!spec) {
      const { def, plan } = registered;
      spec = {
        command: plan.command as string,
        args: plan.args,
        cwd: def.dir,
        env: this.#functionEnv(registered, snapshot, true),
        memoryLimitBytes: def.memoryBytes ?? this.#config.functions.memoryLimitBytes,
        maxOutputBytes: this.#config.functions.maxOutputBytes,
      };
      this.#residentSpecs.set(registered, spec);
    }
    return spec;
  }

  #functionEnv({ def }: RegisteredFunction, snapshot: FunctionSnapshot, reuse: boolean): Record<string, string> {
    return buildFunctionEnv({
      mode: this.#config.mode,
      functionName: def.name,
      inheritEnv: this.#config.functions.inheritEnv,
      processEnv: this.#processEnv,
      dotenv: snapshot.dotenv,
      configEnv: this.#config.functions.env,
      manifestEnv: def.env,
      reuse,
      pythonHelperDir: def.runtime === 'python' ? PYTHON_HELPER_DIR : undefined,
    });
  }
}

function errorBody(error: AlyxError, extraDetails?: Record<string, unknown>): FunctionErrorBody {
  const details = error.details || extraDetails ? { ...error.details, ...extraDetails } : undefined;
  return details ? { code: error.code, message: error.message, details } : { code: error.code, message: error.message };
}
