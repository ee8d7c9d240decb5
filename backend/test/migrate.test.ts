import { cp, mkdtemp, readdir, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MigrationError, migrate, migrationsDir, pendingMigrations } from '../src/migrate.ts';
import { connect, createTestDatabase, silentLogger } from './support/database.ts';
import { ServerDidNotStart, startBackend } from './support/processes.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function copyOfMigrations(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'migrations-'));
  dirs.push(dir);
  await cp(migrationsDir, dir, { recursive: true });
  return dir;
}

interface Started {
  code: number | null;
  ready: boolean;
  applied: string[];
  output: string;
}

/** Starts the real server process and, once it is ready, stops it (SIGTERM); says how it went. */
async function startAndStop(databaseUrl: string): Promise<Started> {
  try {
    const backend = await startBackend('migrating server', { DATABASE_URL: databaseUrl });
    const applied = backend
      .logs()
      .filter((line) => line['msg'] === 'migration applied')
      .map((line) => String(line['migration']));
    return { ready: true, applied, code: await backend.stop(), output: backend.tail(100) };
  } catch (error) {
    if (!(error instanceof ServerDidNotStart)) throw error;
    return { ready: false, applied: [], code: error.exitCode, output: error.output };
  }
}

describe('migrations', () => {
  it('when five processes start at once on an empty database, then each migration is applied exactly once and all come up', async () => {
    const url = await createTestDatabase();
    const results = await Promise.all(Array.from({ length: 5 }, () => startAndStop(url)));

    expect(results.map((r) => r.ready)).toEqual([true, true, true, true, true]);
    expect(results.map((r) => r.code)).toEqual([0, 0, 0, 0, 0]);
    const files = (await readdir(migrationsDir)).filter((f) => f.endsWith('.sql')).sort();
    expect(results.flatMap((r) => r.applied).sort()).toEqual(files);
    const db = connect(url);
    try {
      const { rows } = await db.query<{ name: string }>(
        'SELECT name FROM schema_migrations ORDER BY version',
      );
      expect(rows.map((r) => r.name)).toEqual(files);
      expect(await pendingMigrations(db)).toEqual([]);
    } finally {
      await db.end();
    }
  });

  it('when an applied migration was edited, then migrate refuses with a clear error and changes nothing', async () => {
    const url = await createTestDatabase();
    const dir = await copyOfMigrations();
    const db = connect(url);
    try {
      expect(await migrate(db, silentLogger, dir)).toHaveLength((await readdir(dir)).length);
      const [first] = (await readdir(dir)).sort();
      await appendFile(path.join(dir, first!), '\n-- an innocent-looking edit\n');
      await writeFile(path.join(dir, '9999_later.sql'), 'CREATE TABLE must_not_exist (id int);');

      const error = await migrate(db, silentLogger, dir).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(MigrationError);
      expect((error as Error).message).toMatch(
        new RegExp(`Migration ${first} was edited after it was applied`),
      );
      const { rows } = await db.query(`SELECT to_regclass('must_not_exist') AS t`);
      expect(rows[0]!['t']).toBeNull();
    } finally {
      await db.end();
    }
  });

  it('when a migration fails, then its transaction rolls back and it is not recorded', async () => {
    const url = await createTestDatabase();
    const dir = await copyOfMigrations();
    await writeFile(
      path.join(dir, '9998_broken.sql'),
      'CREATE TABLE half_done (id int); SELECT 1/0;',
    );
    const db = connect(url);
    try {
      await expect(migrate(db, silentLogger, dir)).rejects.toThrow(/9998_broken.sql failed/);
      const { rows } = await db.query(
        `SELECT to_regclass('half_done') AS t, (SELECT count(*) FROM schema_migrations WHERE version = '9998') AS n`,
      );
      expect(rows[0]).toEqual({ t: null, n: '0' });
    } finally {
      await db.end();
    }
  });

  it('when the server process finds an edited migration, then it exits 1 naming the file', async () => {
    const url = await createTestDatabase();
    const db = connect(url);
    try {
      await migrate(db, silentLogger);
      await db.query(`UPDATE schema_migrations SET checksum = 'edited' WHERE version = '0001'`);
    } finally {
      await db.end();
    }
    const result = await startAndStop(url);
    expect(result.ready).toBe(false);
    expect(result.code).toBe(1);
    expect(result.output).toMatch(/Migration 0001_\S+\.sql was edited after it was applied/);
  });
});

describe('start-up against a misconfigured database', () => {
  it('when the password is wrong, then the process exits 1 saying so, instead of retrying as if the database were down', async () => {
    const url = new URL(await createTestDatabase());
    url.password = 'wrong-password';
    const result = await startAndStop(url.toString());
    expect(result.ready).toBe(false);
    expect(result.code).toBe(1);
    expect(result.output).toMatch(/password authentication failed/);
  });
});
