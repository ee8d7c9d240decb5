import { createHash, randomBytes } from 'node:crypto';
import { Router, type Request, type RequestHandler } from 'express';
import type { Db } from '../db.ts';
import { AppError, unauthorized } from '../errors.ts';
import { parse } from '../validation.ts';
import { decoyHash, hashPassword, verifyPassword } from './passwords.ts';
import { RateLimiter } from './rate-limit.ts';
import * as repo from './repository.ts';
import { credentialsSchema, type User } from './schemas.ts';

export interface AuthOptions {
  tokenTtlSeconds: number;
  rateLimitPerMinute: number;
}

// 32 random bytes, base64url: 43 characters.
const tokenPattern = /^[A-Za-z0-9_-]{43}$/;
const hashToken = (token: string): Buffer => createHash('sha256').update(token).digest();

function bearerToken(req: Request): string | undefined {
  const match = /^Bearer +(\S+) *$/i.exec(req.get('authorization') ?? '');
  return match?.[1] && tokenPattern.test(match[1]) ? match[1] : undefined;
}

/** The authenticated user of a request that passed `requireAuth`. */
export function currentUser(req: Request): User {
  const user = (req as Request & { user?: User }).user;
  if (!user) throw new Error('currentUser() used on a route without requireAuth');
  return user;
}

export function requireAuth(db: Db): RequestHandler {
  return async (req, _res, next) => {
    const token = bearerToken(req);
    if (!token) throw unauthorized('Send a valid bearer token in the Authorization header.');
    const user = await repo.findSessionUser(db, hashToken(token));
    if (!user) throw unauthorized('The bearer token is invalid, expired or revoked.');
    (req as Request & { user?: User }).user = user;
    next();
  };
}

export function authRouter(db: Db, options: AuthOptions): Router {
  const router = Router();
  const limiter = new RateLimiter(options.rateLimitPerMinute);
  const auth = requireAuth(db);

  /** Counts the attempt per client address and per email; throws 429 past the limit. */
  const limit = (req: Request, email: string): void => {
    const retryAfter = limiter.hit([`ip:${req.ip ?? 'unknown'}`, `email:${email}`]);
    if (retryAfter > 0) {
      throw new AppError(
        429,
        'rate-limited',
        'Too many requests',
        `Too many attempts; retry in ${retryAfter} s.`,
        {
          headers: { 'Retry-After': String(retryAfter) },
        },
      );
    }
  };

  const issueToken = async (userId: string) => {
    const token = randomBytes(32).toString('base64url');
    const expiresAt = await repo.createSession(
      db,
      hashToken(token),
      userId,
      options.tokenTtlSeconds,
    );
    return { token, expiresAt };
  };

  router.post('/api/v1/auth/register', async (req, res) => {
    const input = parse(credentialsSchema, req.body, 'body');
    const email = input.email.toLowerCase();
    limit(req, email);
    const user = await repo.createUser(db, email, await hashPassword(input.password));
    res.status(201).json({ user, ...(await issueToken(user.id)) });
  });

  router.post('/api/v1/auth/login', async (req, res) => {
    const input = parse(credentialsSchema, req.body, 'body');
    const email = input.email.toLowerCase();
    limit(req, email);
    const found = await repo.findCredentials(db, email);
    // Verify against a decoy when there is no such account, so both failures take as long.
    const valid = await verifyPassword(input.password, found?.passwordHash ?? decoyHash);
    if (!found || !valid) throw unauthorized('Email or password is wrong.');
    res.json(await issueToken(found.id));
  });

  router.post('/api/v1/auth/logout', auth, async (req, res) => {
    await repo.removeSession(db, hashToken(bearerToken(req)!));
    res.status(204).end();
  });

  router.get('/api/v1/me', auth, (req, res) => {
    res.json(currentUser(req));
  });

  return router;
}
