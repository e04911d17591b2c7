import fs from 'node:fs';
import path from 'node:path';
import { isInside } from './discovery';
import type { ExecutionPlan } from './entrypoint';
import type { FunctionDef } from './types';

/**
 * Discovery checked the function's folder and file once; they can change after it (a deploy
 * that swaps files, a folder removed). Checked again just before a process starts: why it
 * cannot run now, or null. The file that runs must still be inside the folder once symbolic
 * links are followed, so a link swapped in later cannot serve a file from elsewhere.
 */
export function whyNotRunnable(def: FunctionDef, plan: ExecutionPlan, projectDir: string): string | null {
  const shownDir = path.relative(projectDir, def.dir) || def.dir;
  const realDir = realpath(def.dir);
  if (realDir === null) return `its folder ${shownDir} is gone: restore it, or reload the functions (SIGHUP or POST /api/admin/reload)`;
  if (plan.file === null) return null;
  const shownFile = path.relative(projectDir, plan.file) || plan.file;
  const realFile = realpath(plan.file);
  if (realFile === null) return `${shownFile} is gone: restore it, or reload the functions (SIGHUP or POST /api/admin/reload)`;
  if (!isInside(realDir, realFile)) return `${shownFile} leads outside ${shownDir} through a symbolic link: it will not be run`;
  return null;
}

function realpath(file: string): string | null {
  try {
    return fs.realpathSync.native(file);
  } catch {
    return null;
  }
}
