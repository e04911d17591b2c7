/**
 * The memory cap is enforced by sampling the process tree's resident memory. Between two
 * samples a JavaScript function could still grow its heap fast, so V8 itself also gets a heap
 * limit of the cap's size, through the variables node and deno read at start (inherited by every
 * process the function starts): its heap alone can never pass the cap.
 */

const HEAP_FLAG = '--max-old-space-size';
/** The variables that pass V8 flags, and how each separates them. */
const V8_FLAG_VARIABLES: ReadonlyArray<{ name: string; separator: string }> = [
  { name: 'NODE_OPTIONS', separator: ' ' },
  { name: 'DENO_V8_FLAGS', separator: ',' },
];
/** Below this V8 cannot even start its own runtime. */
const MIN_HEAP_MB = 16;
/** What node and deno write to stderr when the heap limit stops them. */
const HEAP_EXHAUSTED = /JavaScript heap out of memory|Reached heap limit/;

/** The environment with the heap limit added to each V8 flag variable that does not set one already; unchanged without a cap. */
export function withHeapCap(env: Readonly<Record<string, string>>, memoryLimitBytes: number): Readonly<Record<string, string>> {
  if (memoryLimitBytes <= 0) return env;
  const flag = `${HEAP_FLAG}=${Math.max(MIN_HEAP_MB, Math.floor(memoryLimitBytes / 1048576))}`;
  const capped = { ...env };
  for (const { name, separator } of V8_FLAG_VARIABLES) {
    const current = env[name] ?? '';
    if (!current.includes(HEAP_FLAG)) capped[name] = current === '' ? flag : `${current}${separator}${flag}`;
  }
  return capped;
}

/** Whether a process's last stderr says the heap limit ended it. */
export function heapWasExhausted(stderrTail: string): boolean {
  return HEAP_EXHAUSTED.test(stderrTail);
}
