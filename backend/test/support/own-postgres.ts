import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/embedded-postgres.ts';
import { createLogger } from '../../src/logger.ts';
import { freePort } from './ports.ts';

/** A PostgreSQL of a test's own, for tests that stop and start the database. */
export async function startOwnPostgres(): Promise<EmbeddedDatabase & { dispose(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tasks-backend-own-pg-'));
  const pg = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'pg'),
    port: await freePort(),
    logger: createLogger('silent'),
  });
  return {
    ...pg,
    async dispose() {
      await pg.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
