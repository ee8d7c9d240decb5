import type { Queryable } from '../db.ts';

// Claim the key, or take it over when the old claim is older than 24 hours. A concurrent request
// with the same key waits on the row lock until the first one commits.
const claimKey = `
  INSERT INTO idempotency_keys (user_id, key, request_hash) VALUES ($1, $2, $3)
  ON CONFLICT (user_id, key) DO UPDATE
    SET request_hash = EXCLUDED.request_hash, status = NULL, location = NULL, body = NULL, created_at = now()
    WHERE idempotency_keys.created_at < now() - interval '24 hours'
  RETURNING 1`;
const selectKey = `SELECT request_hash, body FROM idempotency_keys WHERE user_id = $1 AND key = $2`;
// Only the result is kept: a replay renders the same response from it. Release 0.1.0 stored whole
// responses and replays from `status` too, so it stays filled (every idempotent operation is a
// creation) while such a release may run beside this one in a rolling deploy; `location` is
// left empty, which 0.1.0 replays as a response without a Location header. Drop both columns
// (contract) once no release reads them.
const storeBody = `
  UPDATE idempotency_keys SET status = 201, body = $3
  WHERE user_id = $1 AND key = $2`;

export type Claim =
  { kind: 'claimed' } | { kind: 'replay'; result: unknown } | { kind: 'mismatch' };

export async function claim(
  tx: Queryable,
  userId: string,
  key: string,
  requestHash: Buffer,
): Promise<Claim> {
  const claimed = await tx.query(claimKey, [userId, key, requestHash]);
  if (claimed.rowCount === 1) return { kind: 'claimed' };
  const { rows } = await tx.query<{ request_hash: Buffer; body: unknown }>(selectKey, [
    userId,
    key,
  ]);
  const row = rows[0]!;
  if (!row.request_hash.equals(requestHash)) return { kind: 'mismatch' };
  return { kind: 'replay', result: row.body };
}

export async function storeResult(
  tx: Queryable,
  userId: string,
  key: string,
  result: unknown,
): Promise<void> {
  await tx.query(storeBody, [userId, key, JSON.stringify(result)]);
}
