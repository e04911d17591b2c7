import { installSubreaper } from './subreaper';

/**
 * What alyx does once, before it starts any function process: what a function leaves behind
 * becomes alyx's to find and end (see docs/processes.md).
 */
export function prepareToRunFunctions(): void {
  installSubreaper();
}
