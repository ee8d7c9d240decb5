import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pgErrorCode, type Db } from './db.ts';
import type { Logger } from './logger.ts';

/**
 * A small migration runner rather than node-pg-migrate: our migrations are plain SQL files, and
 * what we need on top (one advisory lock across replicas, a checksum that refuses edited files)
 * is a page of code, with no extra runtime dependency in the image.
 */

/** The folder beside `src/` (and beside `dist/` once compiled). */
export const migrationsDir = fileURLToPath(new URL('../migrations', import.meta.url));

// An arbitrary constant that no other code takes: "tasks-backend migrations".
const lockKey = 7_432_001_117;
const filePattern = /^(\d{4})_[a-z0-9_-]+\.sql$/;

export class MigrationError extends Error {
  override name = 'MigrationError';
}

interface Migration {
  version: string;
  name: string;
  sql: string;
  checksum: string;
}

async function loadMigrations(dir = migrationsDir): Promise<Migration[]> {
  const names = (await readdir(dir)).filter((name) => filePattern.test(name)).sort();
  const migrations: Migration[] = [];
  for (const name of names) {
    const sql = await readFile(path.join(dir, name), 'utf8');
    const version = name.slice(0, 4);
    if (migrations.some((m) => m.version === version)) {
      throw new MigrationError(`Two migrations share the number ${version}`);
    }
    migrations.push({
      version,
      name,
      sql,
      checksum: createHash('sha256').update(sql).digest('hex'),
    });
  }
  return migrations;
}

/** Names of migrations on disk that the database has not recorded (without taking the lock). */
export async function pendingMigrations(db: Db, dir = migrationsDir): Promise<string[]> {
  const migrations = await loadMigrations(dir);
  const { rows } = await db
    .query<{ version: string }>('SELECT version FROM schema_migrations')
    .catch((err: unknown) => {
      // No table yet: everything is pending.
      if (pgErrorCode(err) === '42P01') return { rows: [] };
      throw err;
    });
  const applied = new Set(rows.map((row) => row.version));
  return migrations.filter((m) => !applied.has(m.version)).map((m) => m.name);
}

/**
 * Applies pending migrations, each in its own transaction, while holding a session advisory lock,
 * so that any number of processes can start at once and each migration runs exactly once.
 * Returns the names it applied.
 */
export async function migrate(db: Db, logger: Logger, dir = migrationsDir): Promise<string[]> {
  const migrations = await loadMigrations(dir);
  return db.withSession(async (session) => {
    // Waiting for another replica's migration may take longer than a request may.
    await session.query('SET statement_timeout = 0');
    await session.query('SELECT pg_advisory_lock($1)', [lockKey]);
    try {
      await session.query(`
        CREATE TABLE IF NOT EXISTS schema_migrations (
          version    text PRIMARY KEY,
          name       text NOT NULL,
          checksum   text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )`);
      const { rows } = await session.query<{ version: string; name: string; checksum: string }>(
        'SELECT version, name, checksum FROM schema_migrations',
      );
      const applied = new Map(rows.map((row) => [row.version, row]));
      const done: string[] = [];
      for (const migration of migrations) {
        const previous = applied.get(migration.version);
        if (previous) {
          if (previous.checksum !== migration.checksum) {
            throw new MigrationError(
              `Migration ${migration.name} was edited after it was applied ` +
                `(checksum ${previous.checksum.slice(0, 12)} in the database, ` +
                `${migration.checksum.slice(0, 12)} on disk). Applied migrations must never ` +
                'change: restore the file and add a new migration instead.',
            );
          }
          continue;
        }
        await session.query('BEGIN');
        try {
          await session.query(migration.sql);
          await session.query(
            'INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)',
            [migration.version, migration.name, migration.checksum],
          );
          await session.query('COMMIT');
        } catch (err) {
          await session.query('ROLLBACK');
          throw new MigrationError(
            `Migration ${migration.name} failed: ${(err as Error).message}`,
            { cause: err },
          );
        }
        logger.info({ migration: migration.name }, 'migration applied');
        done.push(migration.name);
      }
      // Rows for versions we do not know are left alone: an older release may be rolling back.
      return done;
    } finally {
      await session.query('SELECT pg_advisory_unlock($1)', [lockKey]).catch(() => undefined);
    }
  });
}
