import { hasNatsServer, NatsServers } from './nats-server';

/**
 * The state stores the background and schedule suites run against (SPEC §11, §14): the
 * embedded SQLite file, and JetStream on a nats-server of the test's own, started fresh for
 * each test and stopped after it.
 */
export interface StoreBackend {
  readonly name: 'sqlite' | 'jetstream';
  readonly available: boolean;
  setUp(): Promise<void>;
  tearDown(): Promise<void>;
  /** The environment that points alyx at this store. */
  env(): Record<string, string>;
  /** The running nats-server, for tests that stop and start it. */
  readonly nats: NatsServers | null;
}

class SqliteBackend implements StoreBackend {
  readonly name = 'sqlite' as const;
  readonly available = true;
  readonly nats = null;
  async setUp(): Promise<void> {}
  async tearDown(): Promise<void> {}
  env(): Record<string, string> {
    return {};
  }
}

class JetStreamBackend implements StoreBackend {
  readonly name = 'jetstream' as const;
  readonly available: boolean;
  nats: NatsServers | null = null;

  constructor(what: string) {
    this.available = hasNatsServer(what);
  }

  async setUp(): Promise<void> {
    if (this.available) this.nats = await NatsServers.single();
  }

  async tearDown(): Promise<void> {
    await this.nats?.stop();
    this.nats = null;
  }

  env(): Record<string, string> {
    if (!this.nats) throw new Error('no nats-server runs for this test');
    return { ALYX_STATE_URL: this.nats.url };
  }
}

/** Both stores; JetStream says SKIP loudly (a failure in CI) when nats-server is missing. */
export function storeBackends(what: string): StoreBackend[] {
  return [new SqliteBackend(), new JetStreamBackend(what)];
}
