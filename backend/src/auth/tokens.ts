import { createHash, randomBytes } from 'node:crypto';

/** Bearer tokens: 32 random bytes, base64url (43 characters). Only their SHA-256 is stored. */

const tokenPattern = /^[A-Za-z0-9_-]{43}$/;

export const newToken = (): string => randomBytes(32).toString('base64url');

export const hashToken = (token: string): Buffer => createHash('sha256').update(token).digest();

/** The token of an `Authorization: Bearer …` header, if it has the shape of one of ours. */
export function bearerToken(authorization: string | undefined): string | undefined {
  const match = /^Bearer +(\S+) *$/i.exec(authorization ?? '');
  return match?.[1] && tokenPattern.test(match[1]) ? match[1] : undefined;
}
