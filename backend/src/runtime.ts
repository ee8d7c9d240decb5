import { readFileSync } from 'node:fs';
import type { Config } from './config.ts';
import { createDb, type Db } from './db.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './embedded-postgres.ts';
import { Lifecycle } from './lifecycle.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';

/**
 * The composition root: everything a process needs, built from its configuration in one place.
 * main.ts, the migration CLI and the tests all start from here, so they cannot wire it differently.
 */

export interface Runtime {
  readonly config: Config;
  readonly logger: Logger;
  readonly db: Db;
  /** Absent when METRICS_ENABLED=false. */
  readonly metrics: Metrics | undefined;
  readonly lifecycle: Lifecycle;
  /** APP_VERSION, or package.json's version. */
  readonly version: string;
  /** Ends the pool, then stops the embedded PostgreSQL if this runtime started one. */
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** @default a logger at the configured level */
  readonly logger?: Logger;
  /** prom-client's process and Node metrics; tests leave them out. @default true */
  readonly collectDefaultMetrics?: boolean;
  /** Whether the schema is already known to be up to date (tests migrate first). @default false */
  readonly migrated?: boolean;
}

const packageVersion = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

export async function createRuntime(
  config: Config,
  options: RuntimeOptions = {},
): Promise<Runtime> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const version = config.version ?? packageVersion;
  let embedded: EmbeddedDatabase | undefined;
  if (!config.database.url) {
    embedded = await startEmbeddedPostgres({
      dataDir: config.database.embeddedDataDir,
      port: config.database.embeddedPort,
      logger,
    });
  }
  const metrics = config.metricsEnabled
    ? createMetrics({ version, collectDefaults: options.collectDefaultMetrics ?? true })
    : undefined;
  const db = createDb({
    ...config.database,
    url: config.database.url ?? embedded!.url,
    logger,
    ...(metrics && {
      onQuery: (seconds: number, ok: boolean) =>
        metrics.dbQueryDuration.observe({ outcome: ok ? 'ok' : 'error' }, seconds),
      onRetry: (code: string) =>
        metrics.dbRetries.inc({ reason: code === '40P01' ? 'deadlock' : 'serialization' }),
    }),
  });
  metrics?.observePool(() => db.poolStats());
  return {
    config,
    logger,
    db,
    metrics,
    lifecycle: new Lifecycle({ migrated: options.migrated ?? false }),
    version,
    async close() {
      await db.end();
      await embedded?.stop();
    },
  };
}
