import type { Db } from './db.ts';
import type { Logger } from './logger.ts';

/**
 * Deletes what nobody can use any more: expired sessions, idempotency keys past their 24 hours,
 * rate-limit counters whose window is long over, and the clients accounts have not seen signing
 * in for long (known devices after a year, known addresses after 90 days). Queries already
 * ignore them; this only keeps the tables from growing forever. Batched, so a large backlog never
 * holds long locks; every replica may run it (the deletes are idempotent).
 */

const batchSize = 1000;
const purges = {
  sessions: `
    DELETE FROM sessions WHERE token_hash IN (
      SELECT token_hash FROM sessions WHERE expires_at < now() LIMIT ${batchSize})`,
  idempotencyKeys: `
    DELETE FROM idempotency_keys WHERE (user_id, key) IN (
      SELECT user_id, key FROM idempotency_keys
      WHERE created_at < now() - interval '24 hours' LIMIT ${batchSize})`,
  // Windows are a minute long; an hour-old one is of no use to anybody.
  rateLimitCounters: `
    DELETE FROM rate_limit_counters WHERE key IN (
      SELECT key FROM rate_limit_counters
      WHERE window_start < now() - interval '1 hour' LIMIT ${batchSize})`,
  knownDevices: `
    DELETE FROM known_devices WHERE token_hash IN (
      SELECT token_hash FROM known_devices
      WHERE last_used_at < now() - interval '365 days' LIMIT ${batchSize})`,
  knownAddresses: `
    DELETE FROM known_addresses WHERE (user_id, address) IN (
      SELECT user_id, address FROM known_addresses
      WHERE last_success_at < now() - interval '90 days' LIMIT ${batchSize})`,
} as const;

export type Purged = Record<keyof typeof purges, number>;

export async function purgeExpired(db: Db): Promise<Purged> {
  const purged = {} as Purged;
  for (const [name, sql] of Object.entries(purges) as [keyof typeof purges, string][]) {
    purged[name] = 0;
    for (;;) {
      const { rowCount } = await db.query(sql);
      purged[name] += rowCount ?? 0;
      if ((rowCount ?? 0) < batchSize) break;
    }
  }
  return purged;
}

/** Runs purgeExpired every `intervalMs` (not keeping the process alive); returns a stop function. */
export function scheduleHousekeeping(db: Db, logger: Logger, intervalMs = 10 * 60_000): () => void {
  const timer = setInterval(() => {
    purgeExpired(db).then(
      (purged) => {
        if (Object.values(purged).some((n) => n > 0)) logger.info(purged, 'expired rows purged');
      },
      (err: unknown) => logger.warn({ err }, 'housekeeping failed; will retry'),
    );
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
