import type { Mode } from '../../config/resolve';
import { runServer } from '../../server/lifecycle';
import { loadContext, type ProjectOptions } from '../context';
import { version } from '../version';

export interface ServeOptions extends ProjectOptions {
  strict?: boolean;
}

/** `alyx serve` (mode from dev.enabled) and `alyx dev` (always development): serve until a signal. */
export async function serveCommand(options: ServeOptions, mode?: Mode): Promise<void> {
  const { config, logger, adminTokenExposures } = loadContext(options, mode, 1);
  if (adminTokenExposures.length > 0) {
    logger.warn({ exposures: adminTokenExposures }, `functions can still read the admin token: ${adminTokenExposures.join('; ')}`);
  }
  await runServer({ config, logger, version: version(), strict: options.strict });
  logger.flush();
  // Whatever still holds the event loop (a stuck socket) must not keep a stopped server alive.
  setTimeout(() => process.exit(process.exitCode ?? 0), 1000).unref();
}
