import { FUNCTION_NAME_PATTERN } from '../functions/discovery';

/** A URL path segment as a function name; null when it cannot be one (encoded slashes, dots). */
export function decodeName(segment: string): string | null {
  let name: string;
  try {
    name = decodeURIComponent(segment);
  } catch {
    return null;
  }
  return FUNCTION_NAME_PATTERN.test(name) ? name : null;
}
