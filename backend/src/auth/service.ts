import type { Db } from '../db.ts';
import { AppError, notFound, unauthorized } from '../errors.ts';
import { clientAddressKey } from '../rate-limit/client-address.ts';
import { rateLimiter, type RateLimitState } from '../rate-limit/service.ts';
import type { Caller } from './caller.ts';
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
    caller: Caller,
    password: string,
    work: (current: { userId: string; passwordHash: string }) => Promise<T>,
  ): Promise<T & { rateLimit: RateLimitState }> => {
    const current = await repo.findPasswordHash(db, caller);
    const state = await limiter.consume(`session:${caller.tokenHash.toString('base64url')}`, [
      `password-check:${current.userId}`,
    ]);
    return withLimit(state, async () => {
      if (!(await verifyPassword(password, current.passwordHash))) throw wrongPassword();
      return work(current);
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

    /**
     * The caller of a request with this bearer token: the token's shape is checked here, the
     * session itself by each statement the request makes (auth/caller.ts).
     */
    caller(token: string | undefined): Caller {
      if (!token) throw unauthorized('Send a valid bearer token in the Authorization header.');
      return { tokenHash: hashToken(token), ...lifetime };
    },

    me: (caller: Caller): Promise<User> => repo.findMe(db, caller),

    logout: (caller: Caller): Promise<void> => repo.removeOwnSession(db, caller),

    /** Ends every session of the user, the caller's included. */
    logoutAll: (caller: Caller): Promise<void> => repo.removeAllSessions(db, caller),

    listSessions: (caller: Caller): Promise<SessionInfo[]> => repo.listSessions(db, caller),

    /** Ends one of the caller's sessions; another user's is "not found", like a missing one. */
    async revokeSession(caller: Caller, sessionId: string): Promise<void> {
      if (!(await repo.removeSessionById(db, caller, sessionId))) {
        throw notFound('There is no session with this id.');
      }
    },

    /** Sets a new password and ends every other session; the caller's stays. */
    changePassword(caller: Caller, change: PasswordChange) {
      return withCurrentPassword(caller, change.currentPassword, async (current) => {
        const replacement = await hashPassword(change.newPassword);
        // Changed by someone else since we checked it: the password sent is no longer current.
        if (!(await repo.replacePasswordHash(db, caller, current.passwordHash, replacement))) {
          throw wrongPassword();
        }
        return {};
      });
    },

    /**
     * Deletes the account and everything of it (tasks, tombstones, sessions, known devices,
     * idempotency records) in one transaction; its tokens stop working at once.
     */
    deleteAccount(caller: Caller, currentPassword: string) {
      return withCurrentPassword(caller, currentPassword, async (current) => {
        await db.withTransaction(async (tx) => {
          if (!(await repo.removeUser(tx, current.userId, current.passwordHash))) {
            throw wrongPassword();
          }
        });
        return {};
      });
    },
  };
}
