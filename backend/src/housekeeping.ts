import type { Db } from './db.ts';
import type { Logger } from './logger.ts';

/**
 * Deletes what nobody can use any more: expired sessions, idempotency keys past their 24 hours,
 * rate-limit counters whose window is long over, the clients accounts have not seen signing
 * in for long (known devices after a year, known addresses after 90 days), and tombstones of
 * deleted tasks past their retention. Queries already ignore all but the last; this only keeps
 * the tables from growing forever. Batched, so a large backlog never holds long locks; every
 * replica may run it (the deletes are idempotent).
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

export type Purged = Record<keyof typeof purges | 'tombstones', number>;

export async function purgeExpired(db: Db, options: HousekeepingOptions): Promise<Purged> {
  const batches: [keyof Purged, () => Promise<number>][] = [
    ...(Object.entries(purges) as [keyof typeof purges, string][]).map(
      ([name, sql]): [keyof Purged, () => Promise<number>] => [
        name,
        async () => (await db.query(sql)).rowCount ?? 0,
      ],
    ),
    [
      'tombstones',
      async () =>
        (await db.query<{ n: number }>(purgeTombstones, [options.tombstoneRetentionSeconds]))
          .rows[0]!.n,
    ],
  ];
  const purged = {} as Purged;
  for (const [name, batch] of batches) {
    purged[name] = 0;
    for (;;) {
      const count = await batch();
      purged[name] += count;
      if (count < batchSize) break;
    }
  }
  return purged;
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
        if (Object.values(purged).some((n) => n > 0)) logger.info(purged, 'expired rows purged');
      },
      (err: unknown) => logger.warn({ err }, 'housekeeping failed; will retry'),
    );
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
