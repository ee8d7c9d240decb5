import pg from 'pg';
import type { Logger } from './logger.ts';
import { AppError, DatabaseUnavailableError } from './errors.ts';

/**
 * The only module that imports `pg`. It owns the pool and turns "the database is not there" into
 * DatabaseUnavailableError, so that callers never hang and never fail with a driver error for it.
 */

export type Row = Record<string, unknown>;

export interface Queryable {
  query<R extends Row = Row>(text: string, params?: readonly unknown[]): Promise<pg.QueryResult<R>>;
}

export interface Db extends Queryable {
  /** Runs `fn` inside BEGIN/COMMIT on one client; rolls back when it throws. */
  withTransaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` on a dedicated session that is closed afterwards (never returned to the pool), for
   * work that changes session state: advisory locks, `SET statement_timeout`.
   */
  withSession<T>(fn: (session: Queryable) => Promise<T>): Promise<T>;
  /** `SELECT 1` on a connection of its own (not the request pool), failing after `timeoutMs`. */
  ping(timeoutMs: number): Promise<void>;
  poolStats(): { total: number; idle: number; waiting: number; max: number };
  end(): Promise<void>;
}

export interface DbOptions {
  url: string;
  poolMax: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  logger: Logger;
  /** Called after every statement with its duration, for the db_query_duration_seconds histogram. */
  onQuery?: (seconds: number, ok: boolean) => void;
  /** Called when work is run again after a deadlock or a serialization failure (SQLSTATE). */
  onRetry?: (code: string) => void;
  /**
   * Name parameterised statements, so that each connection parses and plans them once (measured
   * in the README). Off for PgBouncer in transaction mode before 1.21, which cannot keep them.
   * @default true
   */
  preparedStatements?: boolean;
}

/**
 * A deadlock, or a serialization failure: PostgreSQL rolled the work back, so running it again
 * is safe; and since the other party has gone ahead by then, it almost always succeeds. Writers
 * of one user's tasks, its account deletion and housekeeping take locks in one order
 * (migration 0003), but a few races remain that only PostgreSQL can break.
 */
const retryableCodes = new Set(['40P01', '40001']);

async function retryOnce<T>(work: () => Promise<T>, onRetry: (code: string) => void): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const code = pgErrorCode(err);
    if (code === undefined || !retryableCodes.has(code)) throw err;
    onRetry(code);
    // A moment for the transaction that won to commit.
    await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20));
    return work();
  }
}

/** More distinct statement texts than this are sent unnamed: dynamic SQL must not grow it forever. */
const maxNamedStatements = 500;

// SQLSTATE classes and codes that mean "the database is not available right now", not "bad query".
const unavailableCodes = new Set([
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down)
  '53300', // too_many_connections
  '08000',
  '08001',
  '08003',
  '08004',
  '08006', // connection exceptions
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
// Wrong credentials or a missing database: a configuration error, not an outage to wait out.
const configurationCodes = new Set(['28P01', '28000', '3D000']);
const unavailableMessages = [
  'timeout exceeded when trying to connect',
  'Connection terminated',
  'connection timeout',
  'Client has encountered a connection error',
  'Cannot use a pool after calling end',
];

/** The SQLSTATE (or Node system error code) of a driver error, e.g. '23505'; else undefined. */
export function pgErrorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Maps driver errors that mean unavailability to DatabaseUnavailableError, and data exceptions to
 * an invalid-value error; returns others as-is.
 */
function classifyDbError(err: unknown): unknown {
  if (err instanceof AppError) return err;
  const code = pgErrorCode(err);
  if (code === '57014') return new DatabaseUnavailableError('timeout', { cause: err }); // statement_timeout
  if (code !== undefined && unavailableCodes.has(code)) {
    return new DatabaseUnavailableError('unreachable', { cause: err });
  }
  // Class 22, data exception (a value out of range, an invalid date): only a value the client sent
  // that validation let through can cause it. The client's mistake, not our bug.
  if (code?.startsWith('22')) {
    return new AppError(
      'invalid-value',
      'A value in the request is out of range.',
      {},
      {
        cause: err,
      },
    );
  }
  const message = err instanceof Error ? err.message : '';
  if (unavailableMessages.some((m) => message.includes(m))) {
    return new DatabaseUnavailableError('unreachable', { cause: err });
  }
  return err;
}

export function createDb(options: DbOptions): Db {
  const settings = {
    connectionString: options.url,
    // pg waits forever for a connection by default; a request must fail fast instead.
    connectionTimeoutMillis: options.connectTimeoutMs,
    statement_timeout: options.statementTimeoutMs,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: 'tasks-backend',
  };
  const pool = new pg.Pool({ ...settings, max: options.poolMax });
  // Readiness pings get a connection of their own: a pool busy with slow requests is a slow
  // replica, not a dead one, and must not take every replica out of the load balancer at once.
  const probePool = new pg.Pool({ ...settings, max: 1 });
  // An idle client whose server went away emits 'error' on the pool; without a listener that
  // would crash the process. The pool drops the client and the next checkout reconnects.
  for (const p of [pool, probePool]) {
    p.on('error', (err) =>
      options.logger.warn({ err: { message: err.message } }, 'idle database client failed'),
    );
  }

  const timed = async <R extends Row>(
    run: () => Promise<pg.QueryResult<R>>,
  ): Promise<pg.QueryResult<R>> => {
    const started = process.hrtime.bigint();
    let ok = false;
    try {
      const result = await run();
      ok = true;
      return result;
    } catch (err) {
      throw classifyDbError(err);
    } finally {
      options.onQuery?.(Number(process.hrtime.bigint() - started) / 1e9, ok);
    }
  };

  const names = new Map<string, string>();
  /** The statement as pg sends it: named (prepared once per connection) when it has parameters. */
  const statement = (text: string, params: readonly unknown[] | undefined): pg.QueryConfig => {
    const values = params as unknown[] | undefined;
    if (options.preparedStatements === false || values === undefined) return { text, values };
    let name = names.get(text);
    if (name === undefined && names.size < maxNamedStatements) {
      name = `tasks_${names.size}`;
      names.set(text, name);
    }
    return name === undefined ? { text, values } : { name, text, values };
  };

  const clientQueryable = (client: pg.PoolClient): Queryable => ({
    query: <R extends Row>(text: string, params?: readonly unknown[]) =>
      timed(() => client.query<R>(statement(text, params))),
  });

  const connect = async (): Promise<pg.PoolClient> => {
    try {
      return await pool.connect();
    } catch (err) {
      const code = pgErrorCode(err);
      if (code !== undefined && configurationCodes.has(code)) throw err;
      const classified = classifyDbError(err);
      throw classified instanceof DatabaseUnavailableError
        ? classified
        : new DatabaseUnavailableError('unreachable', { cause: err });
    }
  };

  const retried = (code: string) => {
    options.logger.warn({ code }, 'deadlock or serialization failure; running the work again');
    options.onRetry?.(code);
  };

  const transaction = async <T>(fn: (tx: Queryable) => Promise<T>): Promise<T> => {
    const client = await connect();
    let broken: Error | undefined;
    const tx = clientQueryable(client);
    try {
      await tx.query('BEGIN');
      const result = await fn(tx);
      await tx.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await tx.query('ROLLBACK');
      } catch (rollbackErr) {
        // The connection itself is gone: do not hand it back to the pool.
        broken = rollbackErr as Error;
      }
      throw classifyDbError(err);
    } finally {
      client.release(broken);
    }
  };

  return {
    query: <R extends Row>(text: string, params?: readonly unknown[]) =>
      retryOnce(() => timed(() => pool.query<R>(statement(text, params))), retried),

    withTransaction: <T>(fn: (tx: Queryable) => Promise<T>): Promise<T> =>
      retryOnce(() => transaction(fn), retried),

    async withSession<T>(fn: (session: Queryable) => Promise<T>): Promise<T> {
      const client = await connect();
      try {
        return await fn(clientQueryable(client));
      } finally {
        client.release(true);
      }
    },

    async ping(timeoutMs: number): Promise<void> {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new DatabaseUnavailableError('timeout')), timeoutMs);
      });
      try {
        await Promise.race([probePool.query('SELECT 1'), timeout]);
      } finally {
        clearTimeout(timer);
      }
    },

    poolStats: () => ({
      total: pool.totalCount,
      idle: pool.idleCount,
      waiting: pool.waitingCount,
      max: options.poolMax,
    }),

    async end() {
      await Promise.all([pool.end(), probePool.end()]);
    },
  };
}
