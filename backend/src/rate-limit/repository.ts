import type { Queryable } from '../db.ts';

/**
 * Fixed-window counters in PostgreSQL, so that a limit holds whatever the number of replicas. A
 * key's window opens with its first hit and lasts `$4` seconds, on the database's clock (the one
 * clock every replica shares); a hit after it opens a new one.
 *
 * The first key is the gate (the client's address or device): the others are counted only while
 * it is within its limit, so a client that is already refused cannot make the table grow with
 * new keys (say, a new email per attempt). All in one statement, one round trip. The other keys
 * are locked in sorted order, so concurrent statements cannot deadlock.
 */
const hit = (keys: string) => `
    INSERT INTO rate_limit_counters AS c (key, window_start, hits)
    SELECT k, now(), 1 FROM ${keys}
    ON CONFLICT (key) DO UPDATE SET
      hits = CASE WHEN c.window_start > now() - make_interval(secs => $4) THEN c.hits + 1 ELSE 1 END,
      window_start = CASE WHEN c.window_start > now() - make_interval(secs => $4)
                          THEN c.window_start ELSE now() END
    RETURNING key, hits, window_start`;
const consumeSql = `
  WITH gate AS (${hit('(SELECT $1::text AS k) gate_key')}
  ), others AS (${hit('unnest($2::text[]) AS k WHERE (SELECT hits FROM gate) <= $3 ORDER BY k')}
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
