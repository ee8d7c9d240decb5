import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { createDb, type Db, type DbOptions } from '../../src/db.ts';
import { createLogger } from '../../src/logger.ts';

export const silentLogger = createLogger('silent');

export function connect(
  url: string,
  overrides: Partial<Omit<DbOptions, 'url' | 'logger'>> = {},
): Db {
  return createDb({
    url,
    poolMax: 10,
    connectTimeoutMs: 2000,
    statementTimeoutMs: 5000,
    ...overrides,
    logger: silentLogger,
  });
}

/** Creates an empty database of its own for a test file; returns its URL. */
export async function createTestDatabase(adminUrl = inject('adminDatabaseUrl')): Promise<string> {
  const name = `test_${randomBytes(6).toString('hex')}`;
  const admin = connect(adminUrl, { poolMax: 1 });
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
