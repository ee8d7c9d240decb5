import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../src/embedded-postgres.ts';
import { createLogger } from '../src/logger.ts';
import { freePort } from './support/ports.ts';

const logger = createLogger('silent');
let dir: string | undefined;
let first: EmbeddedDatabase | undefined;

afterAll(async () => {
  await first?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('embedded PostgreSQL', () => {
  it('when a second server is started on a data directory in use, then the error says why (a second npm start)', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tasks-backend-embedded-'));
    const dataDir = path.join(dir, 'pg');
    first = await startEmbeddedPostgres({ dataDir, port: await freePort(), logger });

    const second = startEmbeddedPostgres({ dataDir, port: await freePort(), logger });

    await expect(second).rejects.toThrow(
      /The embedded PostgreSQL did not start .*another `npm start`.*PostgreSQL said: .*lock file/,
    );
  });
});
