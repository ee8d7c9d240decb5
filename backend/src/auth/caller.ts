import type { Queryable } from '../db.ts';
import { unauthorized } from '../errors.ts';

/**
 * The caller of an authenticated request, checked by the statement that does the request's work:
 * one round trip, not a session lookup followed by the work (issue 15). Nothing is cached, so a
 * revoked or expired token is refused by the very next statement.
 *
 * An authenticated statement begins `WITH ${callerCte}`, takes `callerParams(caller)` as its first
 * three parameters (so its own start at $4), and selects `${callerColumns}` from `caller`, which
 * has one row when the token is valid and none otherwise: a statement that returns no row at all
 * is a 401 (`ownRows`). `caller.user_id` is the user whose data the statement may touch.
 */

export interface Caller {
  /** The SHA-256 of the bearer token. */
  readonly tokenHash: Buffer;
  /** A token's lifetime from its creation or last extension (sessions slide). */
  readonly ttlSeconds: number;
  /** No extension takes a session past this age. */
  readonly maxSeconds: number;
}

export const callerParams = (caller: Caller): unknown[] => [
  caller.tokenHash,
  caller.ttlSeconds,
  caller.maxSeconds,
];

// Whether session `s` should slide or note its use (see touchSql): its last use was noted more
// than an hour ago, or it is in the last third of its lifetime ($2) and may still grow (below $3).
const touchDue = `(COALESCE(s.last_used_at, s.created_at) < now() - interval '1 hour'
    OR (s.expires_at < now() + make_interval(secs => $2) / 3
        AND s.expires_at < s.created_at + make_interval(secs => $3)))`;

// The token is looked up by its SHA-256: an attacker who can time this lookup learns nothing
// about a valid token, so no constant-time comparison is needed here.
export const callerCte = `
  caller AS (
    SELECT s.user_id, ${touchDue} AS touch_due
    FROM sessions s
    WHERE s.token_hash = $1 AND s.expires_at > now()
      AND s.created_at > now() - make_interval(secs => $3)
  )`;

export const callerColumns = 'caller.user_id AS caller_id, caller.touch_due AS caller_touch_due';

export interface CallerRow {
  [column: string]: unknown;
  caller_id: string;
  caller_touch_due: boolean;
}

// Sessions slide: a token used in the last third of its lifetime is extended to a whole lifetime
// again, never past the longest a session may live; and last_used_at is noted when it is more than
// an hour old. So a session costs at most one extra statement per hour, however many requests it
// makes: a request's own statement only reads the session. The WHERE re-checks on the newest row
// version, so concurrent requests of one session write once.
const touchSql = `
  UPDATE sessions s
  SET last_used_at = now(),
      expires_at = CASE WHEN s.expires_at < now() + make_interval(secs => $2) / 3
                   THEN LEAST(now() + make_interval(secs => $2),
                              s.created_at + make_interval(secs => $3))
                   ELSE s.expires_at END
  WHERE s.token_hash = $1 AND s.expires_at > now() AND ${touchDue}`;

/**
 * The rows of a statement made for the caller: none at all means the token is not valid (401).
 * When the session is due to slide, that is done here, in a statement of its own.
 */
export async function ownRows<R extends CallerRow>(
  db: Queryable,
  caller: Caller,
  rows: R[],
): Promise<R[]> {
  if (ownRowsWithoutTouch(rows)[0]!.caller_touch_due)
    await db.query(touchSql, callerParams(caller));
  return rows;
}

/** The same check, for statements that end the session: there is nothing left to slide. */
export function ownRowsWithoutTouch<R extends CallerRow>(rows: R[]): R[] {
  if (rows.length === 0) throw unauthorized('The bearer token is invalid, expired or revoked.');
  return rows;
}
