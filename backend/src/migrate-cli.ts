import { ConfigError, loadConfig } from './config.ts';
import { migrate } from './migrate.ts';
import { createRuntime } from './runtime.ts';

/** `npm run db:migrate`: applies pending migrations with the same runner the server uses. */
async function main(): Promise<void> {
  const runtime = await createRuntime({ ...loadConfig(), metricsEnabled: false });
  try {
    const applied = await migrate(runtime.db, runtime.logger);
    runtime.logger.info(
      { applied },
      applied.length ? 'migrations applied' : 'database is up to date',
    );
  } finally {
    await runtime.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError || err instanceof Error ? err.message : err);
  process.exit(1);
});
