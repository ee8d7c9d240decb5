import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import type { Db } from '../../src/db.ts';
import type { Lifecycle } from '../../src/health.ts';
import { createMetrics, type Metrics } from '../../src/metrics.ts';
import { migrate } from '../../src/migrate.ts';
import { createHttpServer } from '../../src/server.ts';
import { connect, createTestDatabase, silentLogger } from './database.ts';

export interface TestApp {
  baseUrl: string;
  databaseUrl: string;
  db: Db;
  metrics: Metrics;
  lifecycle: Lifecycle;
  config: Config;
  server: Server;
  close(): Promise<void>;
}

/**
 * The real app on a real port (0: chosen by the OS) against its own migrated database.
 * `env` takes the same variables as the process, so tests configure it the way operators do.
 */
export async function startTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const databaseUrl = env['DATABASE_URL'] ?? (await createTestDatabase());
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    // Tests register many users from one address.
    AUTH_RATE_LIMIT_PER_MINUTE: '100000',
    ...env,
    DATABASE_URL: databaseUrl,
  });
  const metrics = createMetrics({ version: 'test', collectDefaults: false });
  const db = connect(databaseUrl, {
    ...config.database,
    onQuery: (seconds, ok) =>
      metrics.dbQueryDuration.observe({ outcome: ok ? 'ok' : 'error' }, seconds),
  });
  metrics.observePool(() => db.poolStats());
  await migrate(db, silentLogger);
  const lifecycle: Lifecycle = { migrated: true, shuttingDown: false };
  const app = createApp({ config, db, logger: silentLogger, metrics, lifecycle, version: 'test' });
  const server = createHttpServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    databaseUrl,
    db,
    metrics,
    lifecycle,
    config,
    server,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await db.end();
    },
  };
}
