import type { InvocationResult } from '../invoke/invoker';

/**
 * An invocation as a person reads it at a terminal: the output itself (a string as it is,
 * anything else as indented JSON), the function's logs, then one line with the outcome.
 * Scripts get the envelope instead (stdout not a terminal, or --json).
 */
export function formatForTerminal(result: InvocationResult): string {
  const lines: string[] = [];
  const took = `${Math.round(result.durationMs)} ms`;
  if (result.success) {
    lines.push(typeof result.output === 'string' ? result.output : JSON.stringify(result.output ?? null, null, 2));
  }
  if (result.logs.length > 0) {
    lines.push('', 'logs:', ...result.logs.map((entry) => `  ${typeof entry === 'string' ? entry : JSON.stringify(entry)}`));
  }
  if (result.success) {
    lines.push('', `✓ ${result.functionName} succeeded in ${took} (request ${result.requestId})`);
  } else {
    const error = result.error;
    lines.push(`${lines.length > 0 ? '\n' : ''}✗ ${result.functionName} failed in ${took}: ${error?.code ?? 'ERROR'}: ${error?.message ?? ''} (request ${result.requestId})`);
    if (error?.details !== undefined) lines.push(`  details: ${JSON.stringify(error.details)}`);
  }
  return `${lines.join('\n')}\n`;
}
