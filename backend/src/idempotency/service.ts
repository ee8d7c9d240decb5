import { createHash } from 'node:crypto';
import type { Caller } from '../auth/caller.ts';
import type { Db, Queryable } from '../db.ts';
import { AppError } from '../errors.ts';
import * as repo from './repository.ts';

/**
 * Idempotent creation for any resource: with a client's Idempotency-Key, `create` runs at most
 * once per user, key and request; a retry with the same request gets the first result back, and
 * the same key with another request is refused. Keys expire after 24 hours (housekeeping.ts).
 */

export interface IdempotencyKey {
  /** Keys are the caller's user's: another user's same key is another key. */
  readonly caller: Caller;
  readonly key: string;
  /**
   * The validated request, normalised by the caller so that equal requests are equal values (an
   * instant written as `…00Z` or `…00.000+00:00` is the same instant).
   */
  readonly request: Readonly<Record<string, unknown>>;
}

export interface Outcome<T> {
  readonly value: T;
  /** True when this is the first request's result, returned again. */
  readonly replayed: boolean;
}

/** The same fields in another order are the same request. */
export function fingerprint(request: Readonly<Record<string, unknown>>): Buffer {
  const canonical = JSON.stringify(request, Object.keys(request).sort());
  return createHash('sha256').update(canonical).digest();
}

export async function createOnce<T>(
  db: Db,
  key: IdempotencyKey | undefined,
  create: (tx: Queryable) => Promise<T>,
): Promise<Outcome<T>> {
  if (key === undefined) return { value: await create(db), replayed: false };
  return db.withTransaction(async (tx) => {
    const claim = await repo.claim(tx, key.caller, key.key, fingerprint(key.request));
    if (claim.kind === 'mismatch') {
      throw new AppError(
        'idempotency-key-reused',
        'This Idempotency-Key was already used with a different request body.',
      );
    }
    if (claim.kind === 'replay') return { value: claim.result as T, replayed: true };
    const value = await create(tx);
    await repo.storeResult(tx, claim.userId, key.key, value);
    return { value, replayed: false };
  });
}
