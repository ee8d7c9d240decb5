import type { Db } from '../db.ts';
import { AppError, notFound, unauthorized } from '../errors.ts';
import { decoyHash, hashPassword, verifyPassword } from './passwords.ts';
import { RateLimiter } from './rate-limit.ts';
import * as repo from './repository.ts';
import type { Credentials, PasswordChange, SessionInfo, User } from './schemas.ts';
import { hashToken, newToken } from './tokens.ts';

export interface AuthOptions {
  /** A token's lifetime from its creation or last extension. */
  readonly tokenTtlSeconds: number;
  /** No extension takes a session past this age. */
  readonly sessionMaxLifetimeSeconds: number;
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

const wrongPassword = () => new AppError('wrong-password', 'The current password is wrong.');

/**
 * Accounts and sessions: sign-up, sign-in (throttled), sign-out, who a token belongs to, and the
 * account's lifecycle (its sessions, its password, its deletion).
 */
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

  /**
   * The caller's current password, checked like a login (throttled per address and account, the
   * same counters): the hash it matched, for a compare-and-set. A wrong one is 403, not 401: the
   * token is fine, and a client that signs out on 401 must not do it here.
   */
  const confirmPassword = async (
    user: User,
    password: string,
    clientAddress: string,
  ): Promise<string> => {
    throttle(clientAddress, user.email);
    const hash = await repo.findPasswordHash(db, user.id);
    const valid = await verifyPassword(password, hash ?? decoyHash);
    if (!hash || !valid) throw wrongPassword();
    return hash;
  };

  const lifetime = {
    ttlSeconds: options.tokenTtlSeconds,
    maxSeconds: options.sessionMaxLifetimeSeconds,
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
      const user = await repo.findSessionUser(db, tokenHash, lifetime);
      if (!user) throw unauthorized('The bearer token is invalid, expired or revoked.');
      return { user, tokenHash };
    },

    /** Ends every session of the user, the caller's included. */
    async logoutAll(caller: Authenticated): Promise<void> {
      await repo.removeSessions(db, caller.user.id);
    },

    listSessions(caller: Authenticated): Promise<SessionInfo[]> {
      return repo.listSessions(db, caller.user.id, caller.tokenHash, lifetime.maxSeconds);
    },

    /** Ends one of the caller's sessions; another user's is "not found", like a missing one. */
    async revokeSession(caller: Authenticated, sessionId: string): Promise<void> {
      if (!(await repo.removeSessionById(db, caller.user.id, sessionId))) {
        throw notFound('There is no session with this id.');
      }
    },

    /** Sets a new password and ends every other session; the caller's stays. */
    async changePassword(
      caller: Authenticated,
      change: PasswordChange,
      clientAddress: string,
    ): Promise<void> {
      const current = await confirmPassword(caller.user, change.currentPassword, clientAddress);
      const replacement = await hashPassword(change.newPassword);
      await db.withTransaction(async (tx) => {
        // Changed by someone else since we checked it: the password sent is no longer current.
        if (!(await repo.replacePasswordHash(tx, caller.user.id, current, replacement))) {
          throw wrongPassword();
        }
        await repo.removeOtherSessions(tx, caller.user.id, caller.tokenHash);
      });
    },

    /**
     * Deletes the account and everything of it (tasks, tombstones, sessions, idempotency
     * records) in one transaction; its tokens stop working at once.
     */
    async deleteAccount(
      caller: Authenticated,
      currentPassword: string,
      clientAddress: string,
    ): Promise<void> {
      const current = await confirmPassword(caller.user, currentPassword, clientAddress);
      await db.withTransaction(async (tx) => {
        if (!(await repo.removeUser(tx, caller.user.id, current))) throw wrongPassword();
      });
    },
  };
}
