import { setTimeout as sleep } from 'node:timers/promises';
import { createApp } from './app.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { pgErrorCode } from './db.ts';
import { DatabaseUnavailableError } from './errors.ts';
import { scheduleHousekeeping } from './housekeeping.ts';
import { migrate, pendingMigrations } from './migrate.ts';
import { createRuntime, type Runtime } from './runtime.ts';
import { createHttpServer, createMetricsServer, drain, listen } from './server.ts';

/** The process: config → runtime → listen → migrate → ready; signals → graceful shutdown. */

/**
 * Brings the schema up to date (or, with MIGRATE_ON_START=false, waits until someone else has),
 * retrying while the database is unreachable: a pod may well start before its database.
 * An edited or failing migration is fatal.
 */
async function prepareSchema({ db, config, logger, lifecycle }: Runtime): Promise<void> {
  for (let attempt = 1; !lifecycle.shuttingDown; attempt++) {
    try {
      if (config.database.migrateOnStart) {
        await migrate(db, logger);
        lifecycle.markMigrated();
        return;
      }
      const pending = await pendingMigrations(db);
      if (pending.length === 0) {
        lifecycle.markMigrated();
        return;
      }
      logger.warn({ pending }, 'waiting for migrations to be applied (MIGRATE_ON_START=false)');
    } catch (err) {
      if (!(err instanceof DatabaseUnavailableError)) throw err;
      const cause = err.cause instanceof Error ? err.cause : undefined;
      logger.warn(
        { attempt, reason: cause?.message ?? err.detail, code: pgErrorCode(cause) },
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
  const runtime = await createRuntime(config);
  const { logger, metrics, lifecycle, version } = runtime;
  process.on('unhandledRejection', (reason) => {
    logger.fatal({ err: reason }, 'unhandled promise rejection');
    process.exit(1);
  });
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception');
    process.exit(1);
  });

  const server = createHttpServer(createApp(runtime));
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

  let stopHousekeeping = (): void => undefined;
  const shutdown = async (signal: string): Promise<void> => {
    if (lifecycle.shuttingDown) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    lifecycle.beginShutdown();
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
    await runtime.close();
    logger.info({ drained }, 'shutdown complete');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  const started = performance.now();
  await prepareSchema(runtime);
  if (lifecycle.migrated) {
    logger.info({ ms: Math.round(performance.now() - started) }, 'ready');
    stopHousekeeping = scheduleHousekeeping(runtime.db, logger);
  }
}

main().catch((err: unknown) => {
  // Config errors exit above; this is a fatal start-up failure (e.g. an edited migration).
  console.error(`Start-up failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
