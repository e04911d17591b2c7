/** SPEC §5: the JSON documents exchanged with a function's process over stdin and stdout. */
import { countLines, firstContent, hasContent, LineBudget, LOGGED_LINE_LIMITS, type DroppedOutput, type LineLimits } from './line-budget';

export interface InvocationContext {
  auth: unknown;
  env: Readonly<Record<string, string>>;
  alyx_url: string;
  internal_token: string;
  /** What started the invocation (SPEC §5): `{type: "http", method, path}`, `{type: "async"}`, `{type: "schedule", …}`. */
  trigger?: Readonly<Record<string, unknown>>;
  /** Counts from 1; above 1 for a retried background invocation. */
  attempt?: number;
}

export interface FunctionRequest {
  request_id: string;
  function: string;
  input: Record<string, unknown>;
  context: InvocationContext;
}

export interface FunctionErrorBody {
  code: string;
  message: string;
  details?: unknown;
}

/** A function's answer, normalised: string errors become objects, `error.status` is pulled out. */
export type FunctionResponse =
  | { success: true; output: unknown; logs: unknown[] }
  | { success: false; error: FunctionErrorBody; status: number | null; logs: unknown[] };

export interface ParsedStdout {
  /** The response, or null when stdout holds none. */
  response: FunctionResponse | null;
  /** The other non-empty lines, the function's own output for alyx's log: the first ones, within the limits. */
  otherLines: string[];
  /** The other lines beyond the limits; absent when there were none. */
  dropped?: DroppedOutput;
}

export const DEFAULT_FUNCTION_ERROR_CODE = 'FUNCTION_ERROR';

export function encodeRequest(request: FunctionRequest): string {
  return JSON.stringify(request);
}

/**
 * How many lines that look like a JSON object, from the last one back, are tried as the
 * response. A line that fails to parse costs an exception; millions of them would hold the
 * server for seconds.
 */
const MAX_CANDIDATE_LINES = 64;

/**
 * Finds the response in a function's stdout: the whole of it when it is one JSON object
 * (a response of megabytes on one line is normal), else the last non-empty line that is one.
 * Only lines that look like an object are parsed, from the last back, and at most
 * MAX_CANDIDATE_LINES of them: stdout may hold millions of other lines, and of those only the
 * first ones, within `limits`, are kept.
 */
export function parseStdout(stdout: string, limits: LineLimits = LOGGED_LINE_LIMITS): ParsedStdout {
  const whole = parseObject(stdout, 0, stdout.length);
  if (whole) return { response: normaliseResponse(whole), otherLines: [] };

  let searchEnd = stdout.length;
  for (let tried = 0; tried < MAX_CANDIDATE_LINES; tried++) {
    const candidate = lastObjectLine(stdout, searchEnd);
    if (!candidate) break;
    const parsed = parseObject(stdout, candidate.start, candidate.end);
    if (parsed) {
      return { response: normaliseResponse(parsed), ...otherLines(stdout, [[0, candidate.start], [candidate.end + 1, stdout.length]], limits) };
    }
    // Not JSON after all: the function's output like any other line.
    searchEnd = candidate.start;
  }
  return { response: null, ...otherLines(stdout, [[0, stdout.length]], limits) };
}

/** Where the last line before `searchEnd` is whose text, blanks aside, starts with "{" and ends with "}"; null when none is. */
function lastObjectLine(text: string, searchEnd: number): { start: number; end: number } | null {
  while (searchEnd > 0) {
    // Lines without a closing brace are passed over by the search itself, not one by one.
    const close = text.lastIndexOf('}', searchEnd - 1);
    if (close === -1) return null;
    const newline = text.indexOf('\n', close);
    const end = newline === -1 ? text.length : newline;
    const start = text.lastIndexOf('\n', close) + 1;
    if (!hasContent(text, close + 1, end) && text.charCodeAt(firstContent(text, start, close)) === 0x7b) return { start, end };
    searchEnd = start;
  }
  return null;
}

/** The non-empty lines of `ranges` of `text`, in order, while they fit `limits`; the rest is counted. */
function otherLines(text: string, ranges: Array<[number, number]>, limits: LineLimits): Pick<ParsedStdout, 'otherLines' | 'dropped'> {
  const budget = new LineBudget(limits);
  const lines: string[] = [];
  for (const [rangeStart, rangeEnd] of ranges) {
    let position = rangeStart;
    while (position < rangeEnd && budget.open) {
      const newline = text.indexOf('\n', position);
      const lineEnd = newline === -1 || newline > rangeEnd ? rangeEnd : newline;
      if (hasContent(text, position, lineEnd)) {
        const line = text.slice(position, lineEnd).replace(/\r$/, '');
        if (!budget.take(Buffer.byteLength(line))) break;
        lines.push(line);
      }
      position = lineEnd + 1;
    }
    if (position < rangeEnd) budget.drop(countLines(text, position, rangeEnd), Buffer.byteLength(text.slice(position, rangeEnd)));
  }
  const dropped = budget.dropped;
  return dropped ? { otherLines: lines, dropped } : { otherLines: lines };
}

function parseObject(text: string, start: number, end: number): Record<string, unknown> | null {
  let first = start;
  let last = end - 1;
  while (first <= last && isJsonSpace(text.charCodeAt(first))) first++;
  while (last >= first && isJsonSpace(text.charCodeAt(last))) last--;
  if (text.charCodeAt(first) !== 0x7b || text.charCodeAt(last) !== 0x7d) return null;
  try {
    const value: unknown = JSON.parse(text.slice(first, last + 1));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const isJsonSpace = (code: number): boolean => code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;

/**
 * `success` decides when it is a boolean; otherwise the response succeeded unless it carries
 * an `error`. A string `error` (with an optional `error_code`) becomes {code, message}.
 */
export function normaliseResponse(raw: Record<string, unknown>): FunctionResponse {
  const logs = Array.isArray(raw.logs) ? raw.logs : [];
  const failed = typeof raw.success === 'boolean' ? !raw.success : raw.error !== undefined && raw.error !== null;
  if (!failed) return { success: true, output: raw.output ?? null, logs };

  const error = raw.error;
  if (typeof error === 'object' && error !== null && !Array.isArray(error)) {
    const fields = error as Record<string, unknown>;
    const body: FunctionErrorBody = {
      code: nonEmptyString(fields.code) ?? DEFAULT_FUNCTION_ERROR_CODE,
      message: nonEmptyString(fields.message) ?? 'The function reported a failure.',
    };
    if (fields.details !== undefined) body.details = fields.details;
    return { success: false, error: body, status: errorStatus(fields.status), logs };
  }
  return {
    success: false,
    error: {
      code: nonEmptyString(raw.error_code) ?? DEFAULT_FUNCTION_ERROR_CODE,
      message: nonEmptyString(error) ?? 'The function reported a failure.',
    },
    status: null,
    logs,
  };
}

function nonEmptyString(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

/** An integer between 400 and 599 becomes the HTTP status; anything else is ignored. */
function errorStatus(value: unknown): number | null {
  return Number.isInteger(value) && (value as number) >= 400 && (value as number) <= 599 ? (value as number) : null;
}
