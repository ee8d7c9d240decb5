import { ConfigError, loadConfig } from './config.ts';
import { createDb } from './db.ts';
import { startEmbeddedPostgres } from './embedded-postgres.ts';
import { createLogger } from './logger.ts';
import { migrate } from './migrate.ts';

/** `npm run db:migrate`: applies pending migrations with the same runner the server uses. */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const embedded = config.database.url
    ? undefined
    : await startEmbeddedPostgres({
        dataDir: config.database.embeddedDataDir,
        port: config.database.embeddedPort,
        logger,
      });
  const db = createDb({ ...config.database, url: config.database.url ?? embedded!.url, logger });
  try {
    const applied = await migrate(db, logger);
    logger.info({ applied }, applied.length ? 'migrations applied' : 'database is up to date');
  } finally {
    await db.end();
    await embedded?.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError || err instanceof Error ? err.message : err);
  process.exit(1);
});
