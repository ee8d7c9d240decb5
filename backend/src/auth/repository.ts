import { pgErrorCode, type Queryable } from '../db.ts';
import { conflict } from '../errors.ts';
import type { User } from './schemas.ts';

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
const selectSessionUser = `
  SELECT u.id, u.email, u.created_at
  FROM sessions s JOIN users u ON u.id = s.user_id
  WHERE s.token_hash = $1 AND s.expires_at > now()`;
const deleteSession = `DELETE FROM sessions WHERE token_hash = $1`;

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

export async function findSessionUser(db: Queryable, tokenHash: Buffer): Promise<User | undefined> {
  const { rows } = await db.query<UserRow>(selectSessionUser, [tokenHash]);
  return rows[0] && toUser(rows[0]);
}

export async function removeSession(db: Queryable, tokenHash: Buffer): Promise<void> {
  await db.query(deleteSession, [tokenHash]);
}
