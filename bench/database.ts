import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createDb } from '../backend/src/db.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../backend/src/embedded-postgres.ts';
import { createLogger } from '../backend/src/logger.ts';
import { migrate } from '../backend/src/migrate.ts';
import { freePort } from '../backend/test/support/ports.ts';
import { waitFor } from '../backend/test/support/wait.ts';

/** One user's credentials and one of their tasks: what a benchmark request needs. */
export interface Fixture {
  token: string;
  tokenHash: Buffer;
  userId: string;
  taskId: string;
}

export interface BenchDatabase {
  /** URL of the migrated, seeded database, as its owner. */
  url: string;
  host: string;
  port: number;
  database: string;
  /** `SHOW server_version`. */
  serverVersion: string;
  fixtures: Fixture[];
  /** The postmaster's PID: with its children, the database's CPU time (machine.ts). */
  postgresPid: number | undefined;
  /** Each user's change counter now (the position a sync token `next` names when caught up). */
  syncHeads(): Promise<Map<string, number>>;
  /**
   * A login role of its own for one target (server or pgbench), so that PostgreSQL counts its
   * statements apart from everyone else's. Same rights on the data as the owner.
   */
  role(target: string): Promise<DatabaseRole>;
  dispose(): Promise<void>;
}

export interface DatabaseRole {
  name: string;
  password: string;
  /** The database's URL as this role. */
  url: string;
  statements: StatementCounter;
}

/**
 * Statements PostgreSQL executed for one role, from pg_stat_statements: each `calls` is one
 * statement executed, BEGIN and COMMIT included (pg_stat_statements.track_utility is on).
 */
export interface StatementCounter {
  /** Forgets the role's counts, once the statements it is still sending have landed. */
  reset(): Promise<void>;
  /** Calls per statement since the reset, once the role has stopped sending statements. */
  read(): Promise<StatementCounts>;
}

/** Calls by pg_stat_statements' queryid, with the normalised text of each. */
export type StatementCounts = Map<string, { query: string; calls: number }>;

const silent = createLogger('silent');

/**
 * A PostgreSQL 16 of the benchmark's own (embedded, in a throwaway directory) that counts
 * statements per role, migrated with the backend's runner, with `users` users who each own
 * `tasksPerUser` tasks and hold a live session. Nothing is left behind when a step fails.
 */
export async function startBenchDatabase(options: {
  users: number;
  tasksPerUser: number;
}): Promise<BenchDatabase> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tasks-backend-bench-'));
  const removeDir = () => rm(dir, { recursive: true, force: true });
  const embedded = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'pg'),
    port: await freePort(),
    logger: silent,
  }).catch(async (error: unknown) => {
    await removeDir();
    throw error;
  });
  let admin: pg.Client | undefined;
  try {
    const url = await countStatements(embedded);
    const fixtures = await seed(url, options);
    admin = new pg.Client({ connectionString: url.toString() });
    await admin.connect();
    const owner = admin;
    const version = await owner.query<{ server_version: string }>('SHOW server_version');
    return {
      url: url.toString(),
      host: url.hostname,
      port: Number(url.port),
      database: 'bench',
      serverVersion: version.rows[0]!.server_version,
      fixtures,
      postgresPid: await postmasterPid(path.join(dir, 'pg')),
      async syncHeads() {
        const { rows } = await owner.query<{ user_id: string; change_seq: string }>(
          'SELECT user_id, change_seq FROM task_change_counters',
        );
        return new Map(rows.map((r) => [r.user_id, Number(r.change_seq)]));
      },
      async role(target) {
        const name = `bench_${target.toLowerCase().replace(/[^a-z0-9]+/g, '_')}`;
        const password = 'bench';
        await owner.query(`CREATE ROLE ${name} LOGIN PASSWORD '${password}'`);
        // The backend's migration runner may create its bookkeeping table: CREATE on the schema.
        await owner.query(`GRANT pg_read_all_data, pg_write_all_data TO ${name}`);
        await owner.query(`GRANT CREATE ON SCHEMA public TO ${name}`);
        const roleUrl = new URL(url);
        roleUrl.username = name;
        roleUrl.password = password;
        return {
          name,
          password,
          url: roleUrl.toString(),
          statements: statementCounter(owner, name),
        };
      },
      async dispose() {
        await owner.end();
        await embedded.stop();
        await removeDir();
      },
    };
  } catch (error) {
    await admin?.end();
    await embedded.stop();
    await removeDir();
    throw error;
  }
}

/** The first line of postmaster.pid; undefined when it cannot be read. */
async function postmasterPid(dataDir: string): Promise<number | undefined> {
  try {
    const pid = Number(
      (await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0],
    );
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Creates the database `bench` with pg_stat_statements, which counts every statement per role:
 * the round trips per request of each target, from PostgreSQL itself. Returns its URL.
 */
async function countStatements(embedded: EmbeddedDatabase): Promise<URL> {
  const setup = new pg.Client({ connectionString: embedded.url });
  await setup.connect();
  try {
    await setup.query(`ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'`);
    await setup.query('CREATE DATABASE bench');
  } finally {
    await setup.end();
  }
  // The library loads at server start only.
  await embedded.pause();
  await embedded.resume();
  const url = new URL(embedded.url);
  url.pathname = '/bench';
  const bench = new pg.Client({ connectionString: url.toString() });
  await bench.connect();
  try {
    await bench.query('CREATE EXTENSION pg_stat_statements');
    // BEGIN and COMMIT are round trips too; they are counted only with track_utility (the default).
    const { rows } = await bench.query<{ value: string }>(
      `SELECT current_setting('pg_stat_statements.track_utility') AS value`,
    );
    if (rows[0]?.value !== 'on') throw new Error('pg_stat_statements.track_utility is off');
  } finally {
    await bench.end();
  }
  return url;
}

async function seed(
  url: URL,
  options: { users: number; tasksPerUser: number },
): Promise<Fixture[]> {
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
      // Distinct created_at values keep the list order (and its index walk) realistic; a third
      // are completed and a quarter have a due date, so answers carry both kinds of values.
      const tasks = await db.query<{ id: string }>(
        `INSERT INTO tasks (user_id, title, notes, completed, due_at, created_at, updated_at)
         SELECT $1, 'Task ' || n, repeat('note ', n % 20), n % 3 = 0,
                CASE WHEN n % 4 = 0 THEN date_trunc('milliseconds', now()) + n * interval '1 hour' END,
                date_trunc('milliseconds', now()) - n * interval '1 second',
                date_trunc('milliseconds', now()) - n * interval '1 second'
         FROM generate_series(1, $2) AS n
         ORDER BY n
         RETURNING id`,
        [userId, options.tasksPerUser],
      );
      // Every tenth task deleted, through the triggers, so that sync has tombstones to send.
      const deleted = tasks.rows.filter((_, i) => (i + 1) % 10 === 0).map((row) => row.id);
      await db.query('DELETE FROM tasks WHERE user_id = $1 AND id = ANY ($2::uuid[])', [
        userId,
        deleted,
      ]);
      const pick = tasks.rows[Math.floor(tasks.rows.length / 20) * 10 + 4]!;
      fixtures.push({ token, tokenHash, userId, taskId: pick.id });
    }
    await db.query('VACUUM ANALYZE');
  } finally {
    await db.end();
  }
  return fixtures;
}

function statementCounter(admin: pg.Client, role: string): StatementCounter {
  const read = async (): Promise<StatementCounts> => {
    const { rows } = await admin.query<{ queryid: string; query: string; calls: string }>(
      `SELECT s.queryid::text, s.query, s.calls
       FROM pg_stat_statements s
       JOIN pg_roles r ON r.oid = s.userid
       JOIN pg_database d ON d.oid = s.dbid
       WHERE r.rolname = $1 AND d.datname = current_database()`,
      [role],
    );
    return new Map(rows.map((r) => [r.queryid, { query: r.query, calls: Number(r.calls) }]));
  };
  const total = (counts: StatementCounts) =>
    [...counts.values()].reduce((sum, { calls }) => sum + calls, 0);
  // Requests a load generator gave up on at its deadline may still be running their statements:
  // wait until the count stops moving.
  const settled = async (): Promise<StatementCounts> => {
    let last = -1;
    return waitFor(
      `statements of ${role} to settle`,
      async () => {
        const counts = await read();
        const now = total(counts);
        const still = now === last;
        last = now;
        return still && counts;
      },
      { timeoutMs: 5000, intervalMs: 50 },
    );
  };
  return {
    async reset() {
      await settled();
      await admin.query(
        'SELECT pg_stat_statements_reset((SELECT oid FROM pg_roles WHERE rolname = $1), 0, 0)',
        [role],
      );
    },
    read: settled,
  };
}
