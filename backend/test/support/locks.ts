import { afterEach, beforeEach, expect } from 'vitest';
import type { Db, Queryable } from '../../src/db.ts';
import type { TestApp } from './test-app.ts';
import { waitFor } from './wait.ts';

/**
 * For tests of lock order: a transaction stopped where the test wants it, and a wait until other
 * work queues behind it. The pattern: hold a lock, start the request under test, wait until it
 * waits for a lock, release, then look at what both did.
 */

export interface HeldTransaction<T> {
  /** Resolves with what `hold` returned, once it has run: its locks are taken. */
  readonly held: Promise<T>;
  /** Lets the transaction go on: `finish`, then COMMIT. */
  release(): void;
  /** 'committed', or the SQLSTATE it failed with (a deadlock victim's 40P01). */
  readonly outcome: Promise<string>;
}

/** Runs `hold` in a transaction of `db`, then keeps it open until `release()`. */
export function holdTransaction<T>(
  db: Db,
  hold: (tx: Queryable) => Promise<T>,
  finish?: (tx: Queryable, held: T) => Promise<void>,
): HeldTransaction<T> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let markHeld!: (value: T) => void;
  const held = new Promise<T>((resolve) => (markHeld = resolve));
  const outcome = db
    .withTransaction(async (tx) => {
      const value = await hold(tx);
      markHeld(value);
      await released;
      await finish?.(tx, value);
    })
    .then(
      () => 'committed',
      (err: unknown) => (err as { code?: string }).code ?? String(err),
    );
  return { held, release, outcome };
}

/**
 * Waits until exactly `n` sessions of this database wait for a lock (with `statement`, only those
 * whose statement contains it): the work under test is blocked where the test means it to be.
 */
export async function lockWaiters(
  db: Queryable,
  n: number,
  what: string,
  statement?: string,
): Promise<void> {
  await waitFor(
    what,
    async () =>
      (
        await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE datname = current_database() AND wait_event_type = 'Lock'
             AND ($1::text IS NULL OR strpos(query, $1) > 0)`,
          [statement ?? null],
        )
      ).rows[0]!.n === n,
    { timeoutMs: 5000, intervalMs: 10 },
  );
}

/**
 * For a file of lock-order tests: each test fails when the db module ran work again after a
 * deadlock (db_retries_total moved), since the retry would hide the deadlock the test is about.
 */
export function expectNoDeadlockRetries(app: () => TestApp): void {
  let before = 0;
  beforeEach(async () => {
    before = await app().retries();
  });
  afterEach(async () => {
    expect(await app().retries(), 'work run again after a deadlock').toBe(before);
  });
}
