import type { Queryable } from '../db.ts';

/**
 * Fixed-window counters in PostgreSQL, so that a limit holds whatever the number of replicas.
 * Windows are aligned on the database's clock, the one clock every replica shares.
 *
 * The first key is the gate (the client's address or device): the others are counted only while
 * it is within its limit, so a client that is already refused cannot make the table grow with
 * new keys (say, a new email per attempt). All in one statement, one round trip. The other keys
 * are locked in sorted order, so concurrent statements cannot deadlock.
 */
const consumeSql = `
  WITH now AS (
    SELECT to_timestamp(floor(extract(epoch FROM now()) / $4) * $4) AS window_start
  ), gate AS (
    INSERT INTO rate_limit_counters AS c (key, window_start, hits)
    SELECT $1, window_start, 1 FROM now
    ON CONFLICT (key) DO UPDATE
      SET hits = CASE WHEN c.window_start = EXCLUDED.window_start THEN c.hits + 1 ELSE 1 END,
          window_start = EXCLUDED.window_start
    RETURNING key, hits, window_start
  ), others AS (
    INSERT INTO rate_limit_counters AS c (key, window_start, hits)
    SELECT k, window_start, 1 FROM now, unnest($2::text[]) AS k
    WHERE (SELECT hits FROM gate) <= $3
    ORDER BY k
    ON CONFLICT (key) DO UPDATE
      SET hits = CASE WHEN c.window_start = EXCLUDED.window_start THEN c.hits + 1 ELSE 1 END,
          window_start = EXCLUDED.window_start
    RETURNING key, hits, window_start
  )
  SELECT key, hits,
    greatest(1, ceil(extract(epoch FROM window_start + make_interval(secs => $4) - now())))::int
      AS reset_seconds
  FROM (SELECT * FROM gate UNION ALL SELECT * FROM others) counted`;

export interface Count {
  readonly key: string;
  readonly hits: number;
  /** Seconds until this key's window ends. */
  readonly resetSeconds: number;
}

export async function consume(
  db: Queryable,
  gate: string,
  others: readonly string[],
  limit: number,
  windowSeconds: number,
): Promise<Count[]> {
  const { rows } = await db.query<{ key: string; hits: number; reset_seconds: number }>(
    consumeSql,
    [gate, others, limit, windowSeconds],
  );
  return rows.map((row) => ({ key: row.key, hits: row.hits, resetSeconds: row.reset_seconds }));
}
