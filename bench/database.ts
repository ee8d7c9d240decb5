import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createDb } from '../backend/src/db.ts';
import { startEmbeddedPostgres } from '../backend/src/embedded-postgres.ts';
import { createLogger } from '../backend/src/logger.ts';
import { migrate } from '../backend/src/migrate.ts';
import { freePort } from '../backend/test/support/ports.ts';

/** One user's credentials and one of their tasks: what a benchmark request needs. */
export interface Fixture {
  token: string;
  tokenHash: Buffer;
  userId: string;
  taskId: string;
}

export interface BenchDatabase {
  /** URL of the migrated, seeded database. */
  url: string;
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  fixtures: Fixture[];
  dispose(): Promise<void>;
}

const silent = createLogger('silent');

/**
 * A PostgreSQL 16 of the benchmark's own (embedded, in a throwaway directory), migrated with the
 * backend's runner, with `users` users who each own `tasksPerUser` tasks and hold a live session.
 */
export async function startBenchDatabase(options: {
  users: number;
  tasksPerUser: number;
}): Promise<BenchDatabase> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tasks-backend-bench-'));
  const embedded = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'pg'),
    port: await freePort(),
    logger: silent,
  });
  const admin = new pg.Client({ connectionString: embedded.url });
  await admin.connect();
  await admin.query('CREATE DATABASE bench');
  await admin.end();
  const url = new URL(embedded.url);
  url.pathname = '/bench';

  const db = createDb({
    url: url.toString(),
    poolMax: 2,
    connectTimeoutMs: 5000,
    statementTimeoutMs: 60_000,
    logger: silent,
  });
  const fixtures: Fixture[] = [];
  try {
    await migrate(db, silent);
    for (let i = 0; i < options.users; i++) {
      // Tokens exactly as the backend issues them: 32 random bytes, base64url; stored as SHA-256.
      const token = randomBytes(32).toString('base64url');
      const tokenHash = createHash('sha256').update(token).digest();
      const { rows } = await db.query<{ id: string }>(
        `INSERT INTO users (email, password_hash) VALUES ($1, 'not-a-login') RETURNING id`,
        [`bench-${i}@example.com`],
      );
      const userId = rows[0]!.id;
      await db.query(
        `INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, now() + interval '1 day')`,
        [tokenHash, userId],
      );
      // Distinct created_at values keep the list order (and its index walk) realistic.
      const tasks = await db.query<{ id: string }>(
        `INSERT INTO tasks (user_id, title, notes, created_at, updated_at)
         SELECT $1, 'Task ' || n, repeat('note ', n % 20),
                date_trunc('milliseconds', now()) - n * interval '1 second',
                date_trunc('milliseconds', now()) - n * interval '1 second'
         FROM generate_series(1, $2) AS n
         RETURNING id`,
        [userId, options.tasksPerUser],
      );
      const pick = tasks.rows[Math.floor(tasks.rows.length / 2)]!;
      fixtures.push({ token, tokenHash, userId, taskId: pick.id });
    }
    await db.query('VACUUM ANALYZE');
  } finally {
    await db.end();
  }

  return {
    url: url.toString(),
    host: url.hostname,
    port: Number(url.port),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: 'bench',
    fixtures,
    async dispose() {
      await embedded.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
