import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Background } from '../background/background';
import type { AlyxConfig } from '../config/resolve';
import type { FunctionRegistry } from '../functions/registry';
import type { Invoker } from '../invoke/invoker';
import type { Logger } from '../logger';
import type { BodyBudget } from './body-budget';
import type { IdentityVerifier } from '../ingress/identity';
import type { InflightInvocations } from './inflight';
import type { SeenWebhooks } from './ingress/seen-webhooks';

/** What the request handlers share. */
export interface ServerContext {
  readonly config: AlyxConfig;
  readonly registry: FunctionRegistry;
  readonly invoker: Invoker;
  readonly logger: Logger;
  readonly inflight: InflightInvocations;
  /** The memory request bodies in flight may hold together. */
  readonly bodies: BodyBudget;
  readonly version: string;
  readonly startedAt: number;
  readonly isShuttingDown: () => boolean;
  /** Re-discovers the functions and returns how many there are. */
  readonly reload: () => number;
  readonly env: NodeJS.ProcessEnv;
  /** Background invocations and schedules (SPEC §11–12). */
  readonly background: Background;
  /** Verifies bearer tokens (auth.jwt); null when none is configured. */
  readonly identity: IdentityVerifier | null;
  /** Standard Webhooks deliveries already answered (SPEC §13). */
  readonly webhooksSeen: SeenWebhooks;
}

export interface RequestInfo {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly pathname: string;
  readonly query: URLSearchParams;
  readonly requestId: string;
}

export type Handler = (context: ServerContext, request: RequestInfo, param: string | null) => Promise<void> | void;
