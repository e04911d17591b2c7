import { closeInheritedFds } from './inherited-fds';
import { installSubreaper } from '../process/subreaper';

/**
 * What alyx does once, before it starts any function process: no fd it inherited reaches a
 * function, and what a function leaves behind becomes alyx's to find and end (see
 * docs/processes.md).
 */
export function prepareToRunFunctions(): void {
  closeInheritedFds();
  installSubreaper();
}
