import { pgErrorCode, type Queryable } from '../db.ts';
import { conflict } from '../errors.ts';
import type { User } from './schemas.ts';

const insertUser = `
  INSERT INTO users (email, password_hash) VALUES ($1, $2)
  RETURNING id, email, created_at`;
const selectCredentials = `SELECT id, password_hash FROM users WHERE lower(email) = $1`;
const insertSession = `
  INSERT INTO sessions (token_hash, user_id, expires_at)
  VALUES ($1, $2, now() + make_interval(secs => $3))
  RETURNING expires_at`;
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

export async function findCredentials(
  db: Queryable,
  email: string,
): Promise<{ id: string; passwordHash: string } | undefined> {
  const { rows } = await db.query<{ id: string; password_hash: string }>(selectCredentials, [
    email,
  ]);
  const row = rows[0];
  return row && { id: row.id, passwordHash: row.password_hash };
}

export async function createSession(
  db: Queryable,
  tokenHash: Buffer,
  userId: string,
  ttlSeconds: number,
): Promise<string> {
  const { rows } = await db.query<{ expires_at: Date }>(insertSession, [
    tokenHash,
    userId,
    ttlSeconds,
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
