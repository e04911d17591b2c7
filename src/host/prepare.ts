import { closeInheritedFds } from './inherited-fds';
import { owner } from '../process/owner';

/**
 * What alyx does once, before it starts any function process: no fd it inherited reaches a
 * function, and the one owner of the processes alyx starts is installed, so that what a
 * function leaves behind is alyx's to find and end (see docs/processes.md).
 */
export function prepareToRunFunctions(): void {
  closeInheritedFds();
  owner.install();
}
