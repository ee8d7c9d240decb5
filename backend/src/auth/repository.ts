import { pgErrorCode, type Queryable } from '../db.ts';
import {
  callerColumns,
  callerCte,
  callerParams,
  ownRows,
  ownRowsWithoutTouch,
  type Caller,
  type CallerRow,
} from './caller.ts';
import { conflict } from '../errors.ts';
import type { SessionInfo, User } from './schemas.ts';

/** How long a successful sign-in makes its address known to the account. */
export const knownAddressDays = 90;

const insertUser = `
  INSERT INTO users (email, password_hash) VALUES ($1, $2)
  RETURNING id, email, created_at`;
// The account, and whether this client has signed in to it before: the device token it sent
// belongs to the account, or its address signed in successfully within the last 90 days.
const selectAccount = `
  SELECT u.id, u.password_hash,
    EXISTS (SELECT 1 FROM known_devices d WHERE d.token_hash = $2 AND d.user_id = u.id)
      AS known_device,
    EXISTS (SELECT 1 FROM known_addresses a WHERE a.user_id = u.id AND a.address = $3
            AND a.last_success_at > now() - interval '${knownAddressDays} days')
      AS known_address
  FROM users u WHERE lower(u.email) = $1`;
// A session, and what the client it went to is known by from now on: one statement.
const insertSession = `
  WITH session AS (
    INSERT INTO sessions (token_hash, user_id, expires_at)
    VALUES ($1, $2, now() + make_interval(secs => $3))
    RETURNING expires_at
  ), device AS (
    INSERT INTO known_devices (token_hash, user_id) VALUES ($4, $2)
    ON CONFLICT (token_hash) DO UPDATE SET last_used_at = now()
      WHERE known_devices.user_id = EXCLUDED.user_id
  ), address AS (
    INSERT INTO known_addresses (user_id, address) VALUES ($2, $5)
    ON CONFLICT (user_id, address) DO UPDATE SET last_success_at = now()
  )
  SELECT expires_at FROM session`;
// The statements of authenticated requests check the caller's session themselves (auth/caller.ts):
// $1-$3 are the caller's, their own parameters start at $4.
const selectMe = `
  WITH ${callerCte}
  SELECT ${callerColumns}, u.id, u.email, u.created_at
  FROM caller JOIN users u ON u.id = caller.user_id`;
const deleteOwnSession = `
  WITH ${callerCte}, gone AS (
    DELETE FROM sessions s WHERE s.token_hash = $1 AND EXISTS (SELECT 1 FROM caller))
  SELECT ${callerColumns} FROM caller`;
const deleteAllSessions = `
  WITH ${callerCte}, gone AS (
    DELETE FROM sessions s USING caller WHERE s.user_id = caller.user_id)
  SELECT ${callerColumns} FROM caller`;
// Sessions from before migration 0003 have no id until they are first listed: they get one here,
// and come out of the UPDATE (the statement's other reads do not see its writes).
const selectSessions = `
  WITH ${callerCte}, filled AS (
    UPDATE sessions s SET id = gen_random_uuid()
    FROM caller WHERE s.user_id = caller.user_id AND s.id IS NULL
    RETURNING s.id, s.token_hash, s.created_at, s.last_used_at, s.expires_at
  ), listed AS (
    SELECT s.id, s.token_hash, s.created_at, s.last_used_at, s.expires_at
    FROM sessions s JOIN caller ON s.user_id = caller.user_id
    WHERE s.id IS NOT NULL
    UNION ALL
    SELECT * FROM filled
  )
  SELECT ${callerColumns}, l.id, l.created_at,
         COALESCE(l.last_used_at, l.created_at) AS last_used_at, l.expires_at,
         l.token_hash = $1 AS current
  FROM caller LEFT JOIN listed l
    ON l.expires_at > now() AND l.created_at > now() - make_interval(secs => $3)
  ORDER BY COALESCE(l.last_used_at, l.created_at) DESC, l.id`;
const deleteSessionById = `
  WITH ${callerCte}, gone AS (
    DELETE FROM sessions s USING caller WHERE s.user_id = caller.user_id AND s.id = $4
    RETURNING 1)
  SELECT ${callerColumns}, (SELECT count(*) FROM gone)::int AS removed FROM caller`;
const selectPasswordHash = `
  WITH ${callerCte}
  SELECT ${callerColumns}, u.password_hash
  FROM caller JOIN users u ON u.id = caller.user_id`;
// Compare-and-set: a concurrent change of the password makes this one fail, not overwrite it.
// Every other session ends in the same statement, so atomically.
const updatePasswordHash = `
  WITH ${callerCte}, changed AS (
    UPDATE users u SET password_hash = $5
    FROM caller WHERE u.id = caller.user_id AND u.password_hash = $4
    RETURNING u.id
  ), others AS (
    DELETE FROM sessions s USING changed WHERE s.user_id = changed.id AND s.token_hash <> $1)
  SELECT ${callerColumns}, (SELECT count(*) FROM changed)::int AS changed FROM caller`;
// Marks this transaction as the one deleting the account, so the task trigger leaves no
// tombstones (they would be deleted a moment later).
const markAccountDeletion = `SELECT set_config('tasks.deleting_user', $1::text, true)`;
// In the order the other writers lock: task rows, then tombstones (the housekeeping purge), then
// the change counter, then the user row (foreign key checks); and a sign-in updates its known
// device, then checks the user for the new session. Deleting the user first, its cascade would
// reach these rows after the user row, and deadlock with a writer holding one of them.
const deleteTasksOfUser = `DELETE FROM tasks WHERE user_id = $1`;
const deleteTombstonesOfUser = `DELETE FROM task_tombstones WHERE user_id = $1`;
const deleteChangeCounter = `DELETE FROM task_change_counters WHERE user_id = $1`;
const deleteKnownClients = `
  WITH devices AS (DELETE FROM known_devices WHERE user_id = $1)
  DELETE FROM known_addresses WHERE user_id = $1`;
// Sessions and idempotency keys go with the user (ON DELETE CASCADE).
const deleteUser = `DELETE FROM users WHERE id = $1 AND password_hash = $2`;

interface UserRow {
  [column: string]: unknown;
  id: string;
  email: string;
  created_at: Date;
}

const toUser = (row: UserRow): User => ({
  id: row.id,
  email: row.email,
  createdAt: row.created_at.toISOString(),
});

export async function createUser(
  db: Queryable,
  email: string,
  passwordHash: string,
): Promise<User> {
  try {
    const { rows } = await db.query<UserRow>(insertUser, [email, passwordHash]);
    return toUser(rows[0]!);
  } catch (err) {
    if (pgErrorCode(err) === '23505') throw conflict('An account with this email already exists.');
    throw err;
  }
}

export interface Account {
  readonly id: string;
  readonly passwordHash: string;
  /** The device token sent belongs to this account. */
  readonly knownDevice: boolean;
  /** The client's address signed in to this account successfully not long ago. */
  readonly knownAddress: boolean;
}

export async function findAccount(
  db: Queryable,
  email: string,
  client: { deviceTokenHash: Buffer | null; address: string },
): Promise<Account | undefined> {
  const { rows } = await db.query<{
    id: string;
    password_hash: string;
    known_device: boolean;
    known_address: boolean;
  }>(selectAccount, [email, client.deviceTokenHash, client.address]);
  const row = rows[0];
  return (
    row && {
      id: row.id,
      passwordHash: row.password_hash,
      knownDevice: row.known_device,
      knownAddress: row.known_address,
    }
  );
}

/** Starts a session, and remembers the client (its device token and address) for the account. */
export async function createSession(
  db: Queryable,
  session: { tokenHash: Buffer; userId: string; ttlSeconds: number },
  client: { deviceTokenHash: Buffer; address: string },
): Promise<string> {
  const { rows } = await db.query<{ expires_at: Date }>(insertSession, [
    session.tokenHash,
    session.userId,
    session.ttlSeconds,
    client.deviceTokenHash,
    client.address,
  ]);
  return rows[0]!.expires_at.toISOString();
}

/** The caller's account. */
export async function findMe(db: Queryable, caller: Caller): Promise<User> {
  const rows = await ownRows(
    db,
    caller,
    (await db.query<UserRow & CallerRow>(selectMe, callerParams(caller))).rows,
  );
  return toUser(rows[0]!);
}

/** Ends the caller's session. */
export async function removeOwnSession(db: Queryable, caller: Caller): Promise<void> {
  const { rows } = await db.query<CallerRow>(deleteOwnSession, callerParams(caller));
  ownRowsWithoutTouch(rows);
}

/** Ends every session of the caller's account, the caller's included. */
export async function removeAllSessions(db: Queryable, caller: Caller): Promise<void> {
  const { rows } = await db.query<CallerRow>(deleteAllSessions, callerParams(caller));
  ownRowsWithoutTouch(rows);
}

export async function listSessions(db: Queryable, caller: Caller): Promise<SessionInfo[]> {
  type Row = CallerRow & {
    id: string | null;
    created_at: Date;
    last_used_at: Date;
    expires_at: Date;
    current: boolean;
  };
  const { rows } = await db.query<Row>(selectSessions, callerParams(caller));
  return (await ownRows(db, caller, rows)).flatMap((row) =>
    row.id === null
      ? []
      : [
          {
            id: row.id,
            createdAt: row.created_at.toISOString(),
            lastUsedAt: row.last_used_at.toISOString(),
            expiresAt: row.expires_at.toISOString(),
            current: row.current,
          },
        ],
  );
}

/** Whether the caller's account had a session with this id (another account's is not found). */
export async function removeSessionById(
  db: Queryable,
  caller: Caller,
  id: string,
): Promise<boolean> {
  const { rows } = await db.query<CallerRow & { removed: number }>(deleteSessionById, [
    ...callerParams(caller),
    id,
  ]);
  return (await ownRows(db, caller, rows))[0]!.removed === 1;
}

/** The caller's user id and password hash. */
export async function findPasswordHash(
  db: Queryable,
  caller: Caller,
): Promise<{ userId: string; passwordHash: string }> {
  const { rows } = await db.query<CallerRow & { password_hash: string }>(
    selectPasswordHash,
    callerParams(caller),
  );
  const row = (await ownRows(db, caller, rows))[0]!;
  return { userId: row.caller_id, passwordHash: row.password_hash };
}

/**
 * Sets the password hash to `replacement` if it is still `expected`, and ends every session of
 * the account but the caller's. Whether it was still `expected`.
 */
export async function replacePasswordHash(
  db: Queryable,
  caller: Caller,
  expected: string,
  replacement: string,
): Promise<boolean> {
  const { rows } = await db.query<CallerRow & { changed: number }>(updatePasswordHash, [
    ...callerParams(caller),
    expected,
    replacement,
  ]);
  return ownRowsWithoutTouch(rows)[0]!.changed === 1;
}

/**
 * Deletes the user and everything of theirs, if their password hash is still `expected`. Run it
 * in a transaction: it is several statements, and the tasks must not go without the user.
 */
export async function removeUser(
  tx: Queryable,
  userId: string,
  expected: string,
): Promise<boolean> {
  await tx.query(markAccountDeletion, [userId]);
  await tx.query(deleteTasksOfUser, [userId]);
  await tx.query(deleteTombstonesOfUser, [userId]);
  await tx.query(deleteChangeCounter, [userId]);
  await tx.query(deleteKnownClients, [userId]);
  return (await tx.query(deleteUser, [userId, expected])).rowCount === 1;
}
