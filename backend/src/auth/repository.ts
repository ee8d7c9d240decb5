import { pgErrorCode, type Queryable } from '../db.ts';
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
// The token is looked up by its SHA-256: an attacker who can time this lookup learns nothing
// about a valid token, so no constant-time comparison is needed here.
//
// One statement, and a write only when one is due: sessions slide (a token used in the last
// third of its lifetime, $2 seconds, is extended to $2 again, never past $3 seconds from its
// creation), and last_used_at is refreshed when it is more than an hour old. So a session costs
// at most one write per hour, however many requests it makes. The UPDATE re-checks its WHERE on
// the newest row version, so concurrent requests of one session do not write twice.
const selectSessionUser = `
  WITH found AS (
    SELECT u.id, u.email, u.created_at
    FROM sessions s JOIN users u ON u.id = s.user_id
    WHERE s.token_hash = $1 AND s.expires_at > now()
      AND s.created_at > now() - make_interval(secs => $3)
  ), touched AS (
    UPDATE sessions s
    SET last_used_at = now(),
        expires_at = CASE WHEN s.expires_at < now() + make_interval(secs => $2) / 3
                     THEN LEAST(now() + make_interval(secs => $2),
                                s.created_at + make_interval(secs => $3))
                     ELSE s.expires_at END
    WHERE s.token_hash = $1 AND EXISTS (SELECT 1 FROM found)
      AND (COALESCE(s.last_used_at, s.created_at) < now() - interval '1 hour'
           OR (s.expires_at < now() + make_interval(secs => $2) / 3
               AND s.expires_at < s.created_at + make_interval(secs => $3)))
  )
  SELECT id, email, created_at FROM found`;
const deleteSession = `DELETE FROM sessions WHERE token_hash = $1`;
// Sessions from before migration 0003 have no id until they are first listed.
const fillSessionIds = `
  UPDATE sessions SET id = gen_random_uuid() WHERE user_id = $1 AND id IS NULL`;
const selectSessions = `
  SELECT id, created_at, COALESCE(last_used_at, created_at) AS last_used_at, expires_at,
         token_hash = $2 AS current
  FROM sessions
  WHERE user_id = $1 AND expires_at > now() AND created_at > now() - make_interval(secs => $3)
  ORDER BY COALESCE(last_used_at, created_at) DESC, id`;
const deleteSessionById = `DELETE FROM sessions WHERE user_id = $1 AND id = $2`;
const deleteSessions = `DELETE FROM sessions WHERE user_id = $1`;
const deleteOtherSessions = `DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2`;
const selectPasswordHash = `SELECT password_hash FROM users WHERE id = $1`;
// Compare-and-set: a concurrent change of the password makes this one fail, not overwrite it.
const updatePasswordHash = `
  UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2`;
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

export async function findSessionUser(
  db: Queryable,
  tokenHash: Buffer,
  lifetime: { ttlSeconds: number; maxSeconds: number },
): Promise<User | undefined> {
  const { rows } = await db.query<UserRow>(selectSessionUser, [
    tokenHash,
    lifetime.ttlSeconds,
    lifetime.maxSeconds,
  ]);
  return rows[0] && toUser(rows[0]);
}

export async function removeSession(db: Queryable, tokenHash: Buffer): Promise<void> {
  await db.query(deleteSession, [tokenHash]);
}

export async function listSessions(
  db: Queryable,
  userId: string,
  currentTokenHash: Buffer,
  maxSeconds: number,
): Promise<SessionInfo[]> {
  await db.query(fillSessionIds, [userId]);
  const { rows } = await db.query<{
    id: string;
    created_at: Date;
    last_used_at: Date;
    expires_at: Date;
    current: boolean;
  }>(selectSessions, [userId, currentTokenHash, maxSeconds]);
  return rows.map((row) => ({
    id: row.id,
    createdAt: row.created_at.toISOString(),
    lastUsedAt: row.last_used_at.toISOString(),
    expiresAt: row.expires_at.toISOString(),
    current: row.current,
  }));
}

/** Whether the user had a session with this id. */
export async function removeSessionById(
  db: Queryable,
  userId: string,
  id: string,
): Promise<boolean> {
  return (await db.query(deleteSessionById, [userId, id])).rowCount === 1;
}

export async function removeSessions(db: Queryable, userId: string): Promise<void> {
  await db.query(deleteSessions, [userId]);
}

export async function removeOtherSessions(
  db: Queryable,
  userId: string,
  keepTokenHash: Buffer,
): Promise<void> {
  await db.query(deleteOtherSessions, [userId, keepTokenHash]);
}

export async function findPasswordHash(db: Queryable, userId: string): Promise<string | undefined> {
  const { rows } = await db.query<{ password_hash: string }>(selectPasswordHash, [userId]);
  return rows[0]?.password_hash;
}

/** Whether the hash was still `expected` (and is now `replacement`). */
export async function replacePasswordHash(
  db: Queryable,
  userId: string,
  expected: string,
  replacement: string,
): Promise<boolean> {
  return (await db.query(updatePasswordHash, [userId, expected, replacement])).rowCount === 1;
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
