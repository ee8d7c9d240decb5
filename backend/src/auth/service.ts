import type { Db } from '../db.ts';
import { AppError, notFound, unauthorized } from '../errors.ts';
import { clientAddressKey } from '../rate-limit/client-address.ts';
import { rateLimiter, type RateLimitState } from '../rate-limit/service.ts';
import { decoyHash, hashPassword, verifyPassword } from './passwords.ts';
import * as repo from './repository.ts';
import type { Credentials, Login, PasswordChange, SessionInfo, User } from './schemas.ts';
import { hashToken, newToken } from './tokens.ts';

export interface AuthOptions {
  /** A token's lifetime from its creation or last extension (sessions slide). */
  readonly tokenTtlSeconds: number;
  /** No extension takes a session past this age. */
  readonly sessionMaxLifetimeSeconds: number;
  /** Sign-in attempts per minute, per client address, per account and per device. */
  readonly rateLimitPerMinute: number;
  /** IPv6 clients are counted by this prefix of their address (a /64 is one subscriber). */
  readonly ipv6PrefixBits: number;
}

/** Where a request comes from, as far as sign-in throttling is concerned. */
export interface Client {
  /** The client's IP address (behind trusted proxies, the one they report). */
  readonly ip: string;
}

export interface Session {
  readonly token: string;
  readonly expiresAt: string;
  readonly deviceToken: string;
}

/** An authenticated request's user and the session it came with. */
export interface Authenticated {
  readonly user: User;
  readonly tokenHash: Buffer;
}

export type AuthService = ReturnType<typeof authService>;

const wrongPassword = () => new AppError('wrong-password', 'The current password is wrong.');

/**
 * Accounts and sessions: sign-up, sign-in, sign-out, who a token belongs to, and the account's
 * lifecycle (its sessions, its password, its deletion).
 *
 * Sign-in is throttled the way OWASP's authentication cheat sheet describes (its "device cookie",
 * adapted to an API), with counters in PostgreSQL so that a limit holds across replicas:
 * - every attempt counts against the client's address (an IPv6 /64 is one address);
 * - attempts from clients the account does not know count against the account too, so guessing
 *   one password from many addresses is throttled;
 * - a client the account knows (it sends the device token of an earlier sign-in, or its address
 *   signed in successfully before) skips the account's count: strangers' failures cannot lock the
 *   owner out. A known device is counted on its own instead of its address.
 */
export function authService(db: Db, options: AuthOptions) {
  const limiter = rateLimiter(db, { name: 'auth', limit: options.rateLimitPerMinute });
  const addressOf = (client: Client): string => clientAddressKey(client.ip, options.ipv6PrefixBits);
  const lifetime = {
    ttlSeconds: options.tokenTtlSeconds,
    maxSeconds: options.sessionMaxLifetimeSeconds,
  };

  const startSession = async (
    userId: string,
    client: Client,
    deviceToken: string = newToken(),
  ): Promise<Session> => {
    const token = newToken();
    const expiresAt = await repo.createSession(
      db,
      { tokenHash: hashToken(token), userId, ttlSeconds: options.tokenTtlSeconds },
      { deviceTokenHash: hashToken(deviceToken), address: addressOf(client) },
    );
    return { token, expiresAt, deviceToken };
  };

  /** With the limit state, for the RateLimit headers of the answer, whatever the answer. */
  const withLimit = async <T>(
    state: RateLimitState,
    work: () => Promise<T>,
  ): Promise<T & { rateLimit: RateLimitState }> => {
    try {
      return { ...(await work()), rateLimit: state };
    } catch (err) {
      if (err instanceof AppError && !err.details.rateLimit) {
        throw new AppError(
          err.code,
          err.detail,
          { ...err.details, rateLimit: state },
          {
            cause: err.cause,
          },
        );
      }
      throw err;
    }
  };

  /**
   * Runs `work` after checking the caller's current password, throttled like a sign-in from a
   * known device (the same limiter): counted against the session, so that no stranger's failures
   * can block the owner, and against the account, so that many stolen tokens guess no faster than
   * one. `work` gets the hash that matched, for a compare-and-set. A wrong password is 403, not
   * 401: the token is fine, and a client that signs out on 401 must not do it here.
   */
  const withCurrentPassword = async <T>(
    caller: Authenticated,
    password: string,
    work: (currentHash: string) => Promise<T>,
  ): Promise<T & { rateLimit: RateLimitState }> => {
    const state = await limiter.consume(`session:${caller.tokenHash.toString('base64url')}`, [
      `password-check:${caller.user.id}`,
    ]);
    return withLimit(state, async () => {
      const hash = await repo.findPasswordHash(db, caller.user.id);
      const valid = await verifyPassword(password, hash ?? decoyHash);
      if (!hash || !valid) throw wrongPassword();
      return work(hash);
    });
  };

  return {
    async register(credentials: Credentials, client: Client) {
      const email = credentials.email.toLowerCase();
      const state = await limiter.consume(`address:${addressOf(client)}`, [`account:${email}`]);
      return withLimit(state, async () => {
        const user = await repo.createUser(db, email, await hashPassword(credentials.password));
        return { user, ...(await startSession(user.id, client)) };
      });
    },

    async login(login: Login, client: Client) {
      const email = login.email.toLowerCase();
      const address = addressOf(client);
      const deviceTokenHash = login.deviceToken === undefined ? null : hashToken(login.deviceToken);
      const account = await repo.findAccount(db, email, { deviceTokenHash, address });
      const state = account?.knownDevice
        ? await limiter.consume(`device:${deviceTokenHash!.toString('base64url')}`)
        : await limiter.consume(
            `address:${address}`,
            account?.knownAddress ? [] : [`account:${email}`],
          );
      return withLimit(state, async () => {
        // Verify against a decoy when there is no such account, so both failures take as long.
        const valid = await verifyPassword(login.password, account?.passwordHash ?? decoyHash);
        if (!account || !valid) throw unauthorized('Email or password is wrong.');
        return startSession(
          account.id,
          client,
          account.knownDevice ? login.deviceToken : undefined,
        );
      });
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
    changePassword(caller: Authenticated, change: PasswordChange) {
      return withCurrentPassword(caller, change.currentPassword, async (current) => {
        const replacement = await hashPassword(change.newPassword);
        await db.withTransaction(async (tx) => {
          // Changed by someone else since we checked it: the password sent is no longer current.
          if (!(await repo.replacePasswordHash(tx, caller.user.id, current, replacement))) {
            throw wrongPassword();
          }
          await repo.removeOtherSessions(tx, caller.user.id, caller.tokenHash);
        });
        return {};
      });
    },

    /**
     * Deletes the account and everything of it (tasks, tombstones, sessions, known devices,
     * idempotency records) in one transaction; its tokens stop working at once.
     */
    deleteAccount(caller: Authenticated, currentPassword: string) {
      return withCurrentPassword(caller, currentPassword, async (current) => {
        await db.withTransaction(async (tx) => {
          if (!(await repo.removeUser(tx, caller.user.id, current))) throw wrongPassword();
        });
        return {};
      });
    },
  };
}
