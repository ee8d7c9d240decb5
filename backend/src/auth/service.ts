import type { Db } from '../db.ts';
import { AppError, unauthorized } from '../errors.ts';
import { clientAddressKey } from '../rate-limit/client-address.ts';
import { rateLimiter, type RateLimitState } from '../rate-limit/service.ts';
import { decoyHash, hashPassword, verifyPassword } from './passwords.ts';
import * as repo from './repository.ts';
import type { Credentials, Login, User } from './schemas.ts';
import { hashToken, newToken } from './tokens.ts';

export interface AuthOptions {
  readonly tokenTtlSeconds: number;
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

/**
 * Accounts and sessions: sign-up, sign-in, sign-out, and who a token belongs to.
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
      const user = await repo.findSessionUser(db, tokenHash);
      if (!user) throw unauthorized('The bearer token is invalid, expired or revoked.');
      return { user, tokenHash };
    },
  };
}
