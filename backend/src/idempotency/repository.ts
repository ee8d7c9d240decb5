import {
  callerColumns,
  callerCte,
  callerParams,
  ownRows,
  type Caller,
  type CallerRow,
} from '../auth/caller.ts';
import { pgErrorCode, type Queryable } from '../db.ts';
import { unauthorized } from '../errors.ts';

// Claim the caller's key, or take it over when the old claim is older than 24 hours; the session
// is checked in the same statement (auth/caller.ts: $1-$3 are the caller's). A concurrent request
// with the same key waits on the row lock until the first one commits.
const claimKey = `
  WITH ${callerCte}, claimed AS (
    INSERT INTO idempotency_keys (user_id, key, request_hash)
    SELECT user_id, $4, $5 FROM caller
    ON CONFLICT (user_id, key) DO UPDATE
      SET request_hash = EXCLUDED.request_hash, status = NULL, location = NULL, body = NULL,
          created_at = now()
      WHERE idempotency_keys.created_at < now() - interval '24 hours'
    RETURNING 1)
  SELECT ${callerColumns}, (SELECT count(*) FROM claimed)::int AS claimed FROM caller`;
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

/** The claim, and the caller's user id (the key's scope). */
export async function claim(
  tx: Queryable,
  caller: Caller,
  key: string,
  requestHash: Buffer,
): Promise<Claim & { userId: string }> {
  const { rows } = await tx
    .query<CallerRow & { claimed: number }>(claimKey, [...callerParams(caller), key, requestHash])
    .catch((err: unknown) => {
      // The user was deleted while this request waited for its row (the account deletion's lock).
      if (pgErrorCode(err) === '23503') throw unauthorized('The account no longer exists.');
      throw err;
    });
  const own = (await ownRows(tx, caller, rows))[0]!;
  const userId = own.caller_id;
  if (own.claimed === 1) return { kind: 'claimed', userId };
  const { rows: existing } = await tx.query<{ request_hash: Buffer; body: unknown }>(selectKey, [
    userId,
    key,
  ]);
  const row = existing[0]!;
  if (!row.request_hash.equals(requestHash)) return { kind: 'mismatch', userId };
  return { kind: 'replay', result: row.body, userId };
}

export async function storeResult(
  tx: Queryable,
  userId: string,
  key: string,
  result: unknown,
): Promise<void> {
  await tx.query(storeBody, [userId, key, JSON.stringify(result)]);
}

/** The statements of a first idempotent request, for the benchmark (bench/baselines.ts). */
export const statements = { claimKey, storeBody } as const;
