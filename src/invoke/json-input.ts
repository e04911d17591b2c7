/**
 * How deep a JSON document alyx passes on may nest. Encoding a deeper one overflows V8's stack
 * (JSON.stringify recurses), and python's json module refuses about 1,000 levels; no real input
 * comes close to this.
 */
export const MAX_JSON_DEPTH = 512;

/** A JSON text read as an invocation's input, or why it cannot be one. */
export type InputParse =
  | { readonly ok: true; readonly value: Record<string, unknown> }
  | { readonly ok: false; readonly problem: 'not_json' | 'not_object' | 'too_deep'; readonly reason: string };

/** Parses `text` as an input object; an empty text is {}. Never throws. */
export function parseInputText(text: string): InputParse {
  if (text.trim() === '') return { ok: true, value: {} };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, problem: 'not_json', reason: (error as Error).message };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, problem: 'not_object', reason: Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}` };
  }
  if (exceedsDepth(value, MAX_JSON_DEPTH)) {
    return { ok: false, problem: 'too_deep', reason: `it nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep` };
  }
  return { ok: true, value: value as Record<string, unknown> };
}

/** Whether arrays and objects nest more than `limit` levels in `value`; iterative, so any depth is safe to check. */
export function exceedsDepth(value: unknown, limit: number = MAX_JSON_DEPTH): boolean {
  const pending: Array<{ value: unknown; depth: number }> = [{ value, depth: 1 }];
  while (pending.length > 0) {
    const next = pending.pop() as { value: unknown; depth: number };
    if (typeof next.value !== 'object' || next.value === null) continue;
    if (next.depth > limit) return true;
    const children = Array.isArray(next.value) ? next.value : Object.values(next.value);
    for (const child of children) if (typeof child === 'object' && child !== null) pending.push({ value: child, depth: next.depth + 1 });
  }
  return false;
}
