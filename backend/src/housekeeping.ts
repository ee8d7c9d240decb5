import type { Db } from './db.ts';
import type { Logger } from './logger.ts';

/**
 * Deletes what nobody can use any more: expired sessions and idempotency keys past their 24 hours.
 * Queries already ignore them; this only keeps the tables from growing forever. Batched, so a
 * large backlog never holds long locks; every replica may run it (the deletes are idempotent).
 */

const batchSize = 1000;
const purgeSessions = `
  DELETE FROM sessions WHERE token_hash IN (
    SELECT token_hash FROM sessions WHERE expires_at < now() LIMIT ${batchSize})`;
const purgeIdempotencyKeys = `
  DELETE FROM idempotency_keys WHERE (user_id, key) IN (
    SELECT user_id, key FROM idempotency_keys
    WHERE created_at < now() - interval '24 hours' LIMIT ${batchSize})`;

export async function purgeExpired(db: Db): Promise<{ sessions: number; idempotencyKeys: number }> {
  const purge = async (sql: string): Promise<number> => {
    let total = 0;
    for (;;) {
      const { rowCount } = await db.query(sql);
      total += rowCount ?? 0;
      if ((rowCount ?? 0) < batchSize) return total;
    }
  };
  return {
    sessions: await purge(purgeSessions),
    idempotencyKeys: await purge(purgeIdempotencyKeys),
  };
}

/** Runs purgeExpired every `intervalMs` (not keeping the process alive); returns a stop function. */
export function scheduleHousekeeping(db: Db, logger: Logger, intervalMs = 10 * 60_000): () => void {
  const timer = setInterval(() => {
    purgeExpired(db).then(
      (purged) => {
        if (purged.sessions + purged.idempotencyKeys > 0)
          logger.info(purged, 'expired rows purged');
      },
      (err: unknown) => logger.warn({ err }, 'housekeeping failed; will retry'),
    );
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
