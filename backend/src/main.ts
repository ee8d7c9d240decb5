import { readFileSync } from 'node:fs';
import { createApp } from './app.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createDb, type Db } from './db.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './embedded-postgres.ts';
import { DatabaseUnavailableError } from './errors.ts';
import type { Lifecycle } from './health.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMetrics } from './metrics.ts';
import { migrate, pendingMigrations } from './migrate.ts';
import { scheduleHousekeeping } from './housekeeping.ts';
import { createHttpServer, createMetricsServer, drain, listen } from './server.ts';

/** The process: config → database → listen → migrate → ready; signals → graceful shutdown. */

const packageVersion = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Brings the schema up to date (or, with MIGRATE_ON_START=false, waits until someone else has),
 * retrying while the database is unreachable: a pod may well start before its database.
 * An edited or failing migration is fatal.
 */
async function prepareSchema(
  db: Db,
  config: Config,
  logger: Logger,
  lifecycle: Lifecycle,
): Promise<void> {
  for (let attempt = 1; !lifecycle.shuttingDown; attempt++) {
    try {
      if (config.database.migrateOnStart) {
        await migrate(db, logger);
        lifecycle.migrated = true;
        return;
      }
      const pending = await pendingMigrations(db);
      if (pending.length === 0) {
        lifecycle.migrated = true;
        return;
      }
      logger.warn({ pending }, 'waiting for migrations to be applied (MIGRATE_ON_START=false)');
    } catch (err) {
      if (!(err instanceof DatabaseUnavailableError)) throw err;
      const cause = err.cause as { message?: string; code?: string } | undefined;
      logger.warn(
        { attempt, reason: cause?.message ?? err.detail, code: cause?.code },
        'database unavailable while preparing the schema; retrying',
      );
    }
    await sleep(Math.min(5000, 250 * attempt));
  }
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  const version = config.version ?? packageVersion;
  process.on('unhandledRejection', (reason) => {
    logger.fatal({ err: reason }, 'unhandled promise rejection');
    process.exit(1);
  });
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception');
    process.exit(1);
  });

  let embedded: EmbeddedDatabase | undefined;
  if (!config.database.url) {
    embedded = await startEmbeddedPostgres({
      dataDir: config.database.embeddedDataDir,
      port: config.database.embeddedPort,
      logger,
    });
  }
  const metrics = config.metricsEnabled ? createMetrics({ version }) : undefined;
  const db = createDb({
    ...config.database,
    url: config.database.url ?? embedded!.url,
    logger,
    ...(metrics && {
      onQuery: (seconds: number, ok: boolean) =>
        metrics.dbQueryDuration.observe({ outcome: ok ? 'ok' : 'error' }, seconds),
    }),
  });
  metrics?.observePool(() => db.poolStats());
  const lifecycle: Lifecycle = { migrated: false, shuttingDown: false };

  const server = createHttpServer(createApp({ config, db, logger, metrics, lifecycle, version }));
  const metricsServer = metrics && createMetricsServer(metrics);
  const address = await listen(server, config.port, config.host);
  if (metricsServer) await listen(metricsServer, config.metricsPort, config.host);
  logger.info(
    {
      port: address.port,
      metricsPort: metricsServer ? config.metricsPort : null,
      version,
      env: config.env,
    },
    'listening',
  );
  if (config.enableTestRoutes) logger.warn('ENABLE_TEST_ROUTES is on: /api/_test/* is reachable');

  let stopping = false;
  let stopHousekeeping = (): void => undefined;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    lifecycle.shuttingDown = true;
    stopHousekeeping();
    const { delayMs, timeoutMs } = config.shutdown;
    logger.info({ signal, delayMs, timeoutMs }, 'shutdown started: readiness is now 503');
    // Keep serving while load balancers notice we are not ready and stop sending traffic.
    await sleep(delayMs);
    logger.info('shutdown: draining in-flight requests');
    const drained = await drain(server, timeoutMs);
    if (!drained)
      logger.warn({ timeoutMs }, 'shutdown: requests still running at the timeout were cut');
    if (metricsServer) await drain(metricsServer, 1000);
    await db.end();
    await embedded?.stop();
    logger.info({ drained }, 'shutdown complete');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  const started = performance.now();
  await prepareSchema(db, config, logger, lifecycle);
  if (lifecycle.migrated) {
    logger.info({ ms: Math.round(performance.now() - started) }, 'ready');
    stopHousekeeping = scheduleHousekeeping(db, logger);
  }
}

main().catch((err: unknown) => {
  // Config errors exit above; this is a fatal start-up failure (e.g. an edited migration).
  console.error(`Start-up failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
