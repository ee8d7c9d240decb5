import type { Server } from 'node:http';
import type { Express } from 'express';
import { afterAll, beforeAll } from 'vitest';
import { createApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import type { Logger } from '../../src/logger.ts';
import { migrate } from '../../src/migrate.ts';
import { createRuntime, type Runtime } from '../../src/runtime.ts';
import { createHttpServer, createMetricsServer, listen } from '../../src/server.ts';
import { api, type Api } from './api.ts';
import { createTestDatabase, silentLogger } from './database.ts';

export interface TestApp extends Runtime {
  readonly baseUrl: string;
  readonly databaseUrl: string;
  readonly server: Server;
  /** The Express app the server runs, for tests that look at its routes. */
  readonly express: Express;
  /** GET /metrics of the app's registry, on a port of its own as in production. */
  readonly metricsUrl: string;
  /**
   * Work the db module ran again after PostgreSQL broke a deadlock: a test of lock order asserts
   * none, since the retry would otherwise hide the deadlock it is about.
   */
  retries(): Promise<number>;
}

export interface TestAppOptions {
  /** Leave the schema unmigrated and readiness waiting for it. @default false */
  readonly unmigrated?: boolean;
  /** prom-client's process and Node metrics, as main.ts has them. @default false */
  readonly defaultMetrics?: boolean;
  /** Where the app logs. @default silent */
  readonly logger?: Logger;
}

/**
 * The real app, wired by the same composition root as main.ts, on a real port (0: chosen by the
 * OS) against its own migrated database. `env` takes the same variables as the process, so tests
 * configure it the way operators do.
 */
export async function startTestApp(
  env: Record<string, string> = {},
  options: TestAppOptions = {},
): Promise<TestApp> {
  const databaseUrl = env['DATABASE_URL'] ?? (await createTestDatabase());
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    APP_VERSION: 'test',
    // Tests register many users from one address.
    AUTH_RATE_LIMIT_PER_MINUTE: '100000',
    ...env,
    DATABASE_URL: databaseUrl,
  });
  const runtime = await createRuntime(config, {
    logger: options.logger ?? silentLogger,
    collectDefaultMetrics: options.defaultMetrics ?? false,
  });
  if (!options.unmigrated) {
    await migrate(runtime.db, silentLogger);
    runtime.lifecycle.markMigrated();
  }
  const express = createApp(runtime);
  const server = createHttpServer(express);
  const { port } = await listen(server, 0, '127.0.0.1');
  const metricsServer = runtime.metrics && createMetricsServer(runtime.metrics);
  const metricsPort = metricsServer ? (await listen(metricsServer, 0, '127.0.0.1')).port : 0;
  const close = async (s: Server) => {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  };
  return {
    ...runtime,
    baseUrl: `http://127.0.0.1:${port}`,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    databaseUrl,
    server,
    express,
    async retries() {
      const { values } = await runtime.metrics!.dbRetries.get();
      return values.reduce((sum, { value }) => sum + value, 0);
    },
    async close() {
      await close(server);
      if (metricsServer) await close(metricsServer);
      await runtime.close();
    },
  };
}

/**
 * A test file's app: started before its tests, closed after them. `client` is the contract-checking
 * HTTP client (support/api.ts) bound to it; `app()` the running app, for its database and metrics.
 */
export function useTestApp(
  env: Record<string, string> = {},
  options: TestAppOptions = {},
): { client: Api; app: () => TestApp } {
  let started: TestApp | undefined;
  beforeAll(async () => {
    started = await startTestApp(env, options);
  });
  afterAll(() => started?.close());
  const app = (): TestApp => {
    if (!started) throw new Error('useTestApp(): the app starts in beforeAll; use it inside tests');
    return started;
  };
  return { client: api(() => app().baseUrl), app };
}
