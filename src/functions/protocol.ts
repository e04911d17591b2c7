/** SPEC §5: the JSON documents exchanged with a function's process over stdin and stdout. */

export interface InvocationContext {
  auth: unknown;
  env: Readonly<Record<string, string>>;
  alyx_url: string;
  internal_token: string;
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
  /** The response, or null when no line of stdout is a JSON object. */
  response: FunctionResponse | null;
  /** Every other non-empty line: the function's own output, for alyx's log. */
  otherLines: string[];
}

export const DEFAULT_FUNCTION_ERROR_CODE = 'FUNCTION_ERROR';

export function encodeRequest(request: FunctionRequest): string {
  return JSON.stringify(request);
}

/**
 * Finds the response in a function's stdout: the whole of it when it is one JSON object
 * (a response of megabytes on one line is normal), else the last non-empty line that is one.
 */
export function parseStdout(stdout: string): ParsedStdout {
  const whole = parseObject(stdout);
  if (whole) return { response: normaliseResponse(whole), otherLines: [] };

  const lines = stdout.split(/\r?\n/);
  for (let index = lines.length - 1; index >= 0; index--) {
    const candidate = parseObject(lines[index]);
    if (candidate) {
      const otherLines = lines.filter((line, other) => other !== index && line.trim() !== '');
      return { response: normaliseResponse(candidate), otherLines };
    }
  }
  return { response: null, otherLines: lines.filter((line) => line.trim() !== '') };
}

function parseObject(text: string): Record<string, unknown> | null {
  const trimmed = text.trim();
  if (!trimmed.startsWith('{') || !trimmed.endsWith('}')) return null;
  try {
    const value: unknown = JSON.parse(trimmed);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

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
