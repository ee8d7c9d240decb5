import type { Db } from '../db.ts';
import { AppError, unauthorized } from '../errors.ts';
import { decoyHash, hashPassword, verifyPassword } from './passwords.ts';
import { RateLimiter } from './rate-limit.ts';
import * as repo from './repository.ts';
import type { Credentials, User } from './schemas.ts';
import { hashToken, newToken } from './tokens.ts';

export interface AuthOptions {
  readonly tokenTtlSeconds: number;
  readonly rateLimitPerMinute: number;
}

export interface Session {
  readonly token: string;
  readonly expiresAt: string;
}

/** An authenticated request's user and the session it came with. */
export interface Authenticated {
  readonly user: User;
  readonly tokenHash: Buffer;
}

export type AuthService = ReturnType<typeof authService>;

/** Accounts and sessions: sign-up, sign-in (throttled), sign-out, and who a token belongs to. */
export function authService(db: Db, options: AuthOptions) {
  const limiter = new RateLimiter(options.rateLimitPerMinute);

  /** Counts the attempt per client address and per email; refuses it past the limit. */
  const throttle = (clientAddress: string, email: string): void => {
    const retryAfter = limiter.hit([`ip:${clientAddress}`, `email:${email}`]);
    if (retryAfter > 0) {
      throw new AppError('rate-limited', `Too many attempts; retry in ${retryAfter} s.`, {
        retryAfterSeconds: retryAfter,
      });
    }
  };

  const startSession = async (userId: string): Promise<Session> => {
    const token = newToken();
    const expiresAt = await repo.createSession(
      db,
      hashToken(token),
      userId,
      options.tokenTtlSeconds,
    );
    return { token, expiresAt };
  };

  return {
    async register(credentials: Credentials, clientAddress: string) {
      const email = credentials.email.toLowerCase();
      throttle(clientAddress, email);
      const user = await repo.createUser(db, email, await hashPassword(credentials.password));
      return { user, ...(await startSession(user.id)) };
    },

    async login(credentials: Credentials, clientAddress: string): Promise<Session> {
      const email = credentials.email.toLowerCase();
      throttle(clientAddress, email);
      const found = await repo.findCredentials(db, email);
      // Verify against a decoy when there is no such account, so both failures take as long.
      const valid = await verifyPassword(credentials.password, found?.passwordHash ?? decoyHash);
      if (!found || !valid) throw unauthorized('Email or password is wrong.');
      return startSession(found.id);
    },

    async logout(tokenHash: Buffer): Promise<void> {
      await repo.removeSession(db, tokenHash);
    },

    /** The user a bearer token belongs to; unauthorized when it is invalid, expired or revoked. */
    async authenticate(token: string | undefined): Promise<Authenticated> {
      if (!token) throw unauthorized('Send a valid bearer token in the Authorization header.');
      const tokenHash = hashToken(token);
      const user = await repo.findSessionUser(db, tokenHash);
      if (!user) throw unauthorized('The bearer token is invalid, expired or revoked.');
      return { user, tokenHash };
    },
  };
}
