/**
 * The memory cap is enforced by sampling the process tree's resident memory. Between two
 * samples a node function could still grow its heap fast, so node (and every node process it
 * starts, through the inherited NODE_OPTIONS) also gets a V8 heap limit of the same size: its
 * heap alone can never pass the cap.
 */

const HEAP_FLAG = '--max-old-space-size';
/** Below this V8 cannot even start its own runtime. */
const MIN_HEAP_MB = 16;
/** What node writes to stderr when the heap limit stops it. */
const HEAP_EXHAUSTED = /JavaScript heap out of memory|Reached heap limit/;

/** The environment with NODE_OPTIONS carrying the heap limit; unchanged without a cap or when a limit is already set. */
export function withHeapCap(env: Readonly<Record<string, string>>, memoryLimitBytes: number): Readonly<Record<string, string>> {
  if (memoryLimitBytes <= 0) return env;
  const options = env.NODE_OPTIONS ?? '';
  if (options.includes(HEAP_FLAG)) return env;
  const heapMb = Math.max(MIN_HEAP_MB, Math.floor(memoryLimitBytes / 1048576));
  return { ...env, NODE_OPTIONS: `${options} ${HEAP_FLAG}=${heapMb}`.trim() };
}

/** Whether a process's last stderr says the heap limit ended it. */
export function heapWasExhausted(stderrTail: string): boolean {
  return HEAP_EXHAUSTED.test(stderrTail);
}
