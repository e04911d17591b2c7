/** Sizes ("512kb", "6mb", "1gb", powers of 1024, or bytes) and durations ("500ms", "30s", "2m", or seconds). */

/**
 * The `pattern` of the size and duration definitions in schemas/*.json, so that editors refuse
 * what alyx refuses. JSON Schema patterns have no flags: the units' case is spelled out.
 */
export const SIZE_PATTERN_SOURCE = '^\\s*(\\d+(?:\\.\\d+)?)\\s*([bB]|[kK][bB]|[mM][bB]|[gG][bB])?\\s*$';
export const DURATION_PATTERN_SOURCE = '^\\s*(\\d+(?:\\.\\d+)?)\\s*([mM][sS]|[sS]|[mM]|[hH])?\\s*$';

export const SIZE_PATTERN = new RegExp(SIZE_PATTERN_SOURCE);
export const DURATION_PATTERN = new RegExp(DURATION_PATTERN_SOURCE);

const SIZE_FACTORS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };
const DURATION_FACTORS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Bytes for a size; undefined when the value is not a size. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.floor(value) : undefined;
  const match = SIZE_PATTERN.exec(value);
  if (!match) return undefined;
  return Math.floor(Number(match[1]) * SIZE_FACTORS[(match[2] ?? 'b').toLowerCase()]);
}

/** Milliseconds for a duration; a plain number means seconds. Undefined when not a duration. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : undefined;
  const match = DURATION_PATTERN.exec(value);
  if (!match) return undefined;
  return Math.round(Number(match[1]) * DURATION_FACTORS[(match[2] ?? 's').toLowerCase()]);
}

/** Megabytes as a plain number, or a size string: used by memory caps. */
export function parseMegabytes(value: string | number): number | undefined {
  return typeof value === 'number' ? parseSize(value * 1024 * 1024) : parseSize(value);
}
