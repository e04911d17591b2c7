import type { AlyxError } from '../errors';
import type { Logger } from '../logger';
import type { RunResult } from './runner';
import { ResidentProcess, type ResidentCall, type ResidentSpec } from './resident';

/**
 * The reuse processes of every function (SPEC §10). A function's processes are started on
 * demand, one per invocation running at once, so their number stays within its concurrency
 * limit (the invoker holds a slot for each call). A process idle for `idleMs` ends. Each set
 * belongs to one definition of its function: a reload that changes it, a SIGHUP, or in
 * development any change to the function's files retires the set, and the next call starts a
 * process that runs what is there now.
 */

export interface ResidentPoolOptions {
  readonly logger: Logger;
  readonly idleMs?: number;
}

const DEFAULT_IDLE_MS = 60_000;

interface FunctionResidents {
  readonly definition: object;
  readonly processes: Set<ResidentProcess>;
}

export class ResidentPool {
  readonly #logger: Logger;
  readonly #idleMs: number;
  readonly #functions = new Map<string, FunctionResidents>();
  /** Every process not yet ended, retired ones included: shutdown waits for them. */
  readonly #live = new Set<ResidentProcess>();
  #sweeper: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(options: ResidentPoolOptions) {
    this.#logger = options.logger;
    this.#idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
  }

  /** Processes alive now, all functions together. */
  get size(): number {
    return this.#live.size;
  }

  /**
   * Runs one invocation on an idle process of `name`, or on one started for it. `definition`
   * identifies what the processes run: a set made for another one is retired. Never rejects.
   */
  async run(name: string, definition: object, spec: () => ResidentSpec, call: ResidentCall): Promise<RunResult> {
    let residents = this.#functions.get(name);
    if (residents && residents.definition !== definition) {
      this.#retire(residents, 'the function changed');
      residents = undefined;
    }
    if (!residents) {
      residents = { definition, processes: new Set() };
      this.#functions.set(name, residents);
    }
    for (let attempt = 1; ; attempt++) {
      let chosen = this.#idle(residents);
      const reused = chosen !== null;
      if (!chosen) {
        const started = this.#start(name, residents, spec());
        if ('error' in started) return { ok: false, error: started.error, stderrTail: '', finished: Promise.resolve() };
        chosen = started.resident;
      }
      const { undelivered, ...outcome } = await chosen.call(call);
      if (this.#closed) chosen.retire();
      // It had exited while idle, so it never read the request: another process runs it, once.
      if (undelivered && reused && attempt === 1) continue;
      return { ...outcome, finished: Promise.resolve() };
    }
  }

  /** The idle process used last: the one idle longest is left to reach the idle end, so load that fewer processes serve keeps fewer. */
  #idle(residents: FunctionResidents): ResidentProcess | null {
    let chosen: ResidentProcess | null = null;
    for (const candidate of residents.processes) if (candidate.available && (!chosen || candidate.idleSince > chosen.idleSince)) chosen = candidate;
    return chosen;
  }

  /** Whether a process of `name` that runs `definition` is alive (idle or serving). */
  serving(name: string, definition: object): boolean {
    const residents = this.#functions.get(name);
    return residents !== undefined && residents.definition === definition && residents.processes.size > 0;
  }

  /** Development: the function's files changed. */
  drainFunction(name: string, reason: string): void {
    const residents = this.#functions.get(name);
    if (residents) this.#retire(residents, reason);
  }

  /** Reload, SIGHUP: every set is retired; processes serving an invocation end once it is answered. */
  drain(reason: string): void {
    for (const residents of [...this.#functions.values()]) this.#retire(residents, reason);
  }

  /** Shutdown: retires every process and waits until all have ended (those serving one, after its answer). */
  async close(): Promise<void> {
    this.#closed = true;
    this.drain('shutdown');
    await Promise.all([...this.#live].map((resident) => resident.ended));
  }

  #start(name: string, residents: FunctionResidents, spec: ResidentSpec): { resident: ResidentProcess } | { error: AlyxError } {
    const logger = this.#logger.child({ function: name });
    const resident = new ResidentProcess(spec, logger, (ended) => {
      residents.processes.delete(ended);
      this.#live.delete(ended);
    });
    const error = resident.start();
    if (error) return { error };
    residents.processes.add(resident);
    this.#live.add(resident);
    logger.debug({ pid: resident.pid, processes: residents.processes.size }, 'reuse process started');
    this.#startSweeper();
    return { resident };
  }

  #retire(residents: FunctionResidents, reason: string): void {
    for (const [name, value] of this.#functions) if (value === residents) this.#functions.delete(name);
    if (residents.processes.size > 0) this.#logger.debug({ processes: residents.processes.size, reason }, `retiring ${residents.processes.size} reuse process(es): ${reason}`);
    for (const resident of residents.processes) resident.retire();
  }

  #startSweeper(): void {
    if (this.#sweeper) return;
    this.#sweeper = setInterval(() => {
      const now = Date.now();
      for (const residents of this.#functions.values()) {
        for (const resident of residents.processes) if (resident.available && now - resident.idleSince >= this.#idleMs) resident.retire();
      }
      if (this.#live.size === 0 && this.#sweeper) {
        clearInterval(this.#sweeper);
        this.#sweeper = null;
      }
    }, Math.max(10, Math.min(this.#idleMs / 2, 5000)));
    this.#sweeper.unref();
  }
}
