import type { Db } from './db.ts';
import type { Logger } from './logger.ts';

/**
 * Deletes what nobody can use any more: expired sessions, idempotency keys past their 24 hours,
 * and tombstones of deleted tasks past their retention. Queries already ignore the first two;
 * this only keeps the tables from growing forever. Batched, so a large backlog never holds long
 * locks; every replica may run it (the deletes are idempotent).
 */

const batchSize = 1000;
const purgeSessions = `
  DELETE FROM sessions WHERE token_hash IN (
    SELECT token_hash FROM sessions WHERE expires_at < now() LIMIT ${batchSize})`;
const purgeIdempotencyKeys = `
  DELETE FROM idempotency_keys WHERE (user_id, key) IN (
    SELECT user_id, key FROM idempotency_keys
    WHERE created_at < now() - interval '24 hours' LIMIT ${batchSize})`;

// A syncing client whose token is older than a purged tombstone would never learn of that
// deletion, so the same statement records, per user, the highest change number purged: the
// sync answers such a token with 410 (tasks/service.ts). One statement, so the two cannot part.
const purgeTombstones = `
  WITH purged AS (
    DELETE FROM task_tombstones WHERE (user_id, task_id) IN (
      SELECT user_id, task_id FROM task_tombstones
      WHERE deleted_at < now() - make_interval(secs => $1) LIMIT ${batchSize})
    RETURNING user_id, change_seq
  ), horizon AS (
    INSERT INTO task_change_counters AS c (user_id, change_seq, purged_change_seq)
    SELECT user_id, max(change_seq), max(change_seq) FROM purged GROUP BY user_id
    ON CONFLICT (user_id) DO UPDATE
      SET purged_change_seq = GREATEST(c.purged_change_seq, EXCLUDED.purged_change_seq)
  )
  SELECT count(*)::int AS n FROM purged`;

export interface HousekeepingOptions {
  /** How long a deleted task's tombstone is kept (SYNC_TOMBSTONE_RETENTION_SECONDS). */
  readonly tombstoneRetentionSeconds: number;
}

export interface Purged {
  readonly sessions: number;
  readonly idempotencyKeys: number;
  readonly tombstones: number;
}

export async function purgeExpired(db: Db, options: HousekeepingOptions): Promise<Purged> {
  const purge = async (batch: () => Promise<number>): Promise<number> => {
    let total = 0;
    for (;;) {
      const count = await batch();
      total += count;
      if (count < batchSize) return total;
    }
  };
  const deleted = (sql: string) => async () => (await db.query(sql)).rowCount ?? 0;
  return {
    sessions: await purge(deleted(purgeSessions)),
    idempotencyKeys: await purge(deleted(purgeIdempotencyKeys)),
    tombstones: await purge(
      async () =>
        (await db.query<{ n: number }>(purgeTombstones, [options.tombstoneRetentionSeconds]))
          .rows[0]!.n,
    ),
  };
}

/** Runs purgeExpired every `intervalMs` (not keeping the process alive); returns a stop function. */
export function scheduleHousekeeping(
  db: Db,
  logger: Logger,
  options: HousekeepingOptions,
  intervalMs = 10 * 60_000,
): () => void {
  const timer = setInterval(() => {
    purgeExpired(db, options).then(
      (purged) => {
        if (purged.sessions + purged.idempotencyKeys + purged.tombstones > 0)
          logger.info(purged, 'expired rows purged');
      },
      (err: unknown) => logger.warn({ err }, 'housekeeping failed; will retry'),
    );
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
