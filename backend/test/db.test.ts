import { describe, expect, it } from 'vitest';
import { connect, createTestDatabase } from './support/database.ts';

describe('prepared statements', () => {
  it('when on (the default), then a parameterised statement is prepared once per connection and reused; when off, none is', async () => {
    const url = await createTestDatabase();
    for (const preparedStatements of [true, false]) {
      const db = connect(url, { preparedStatements });
      try {
        const prepared = await db.withSession(async (session) => {
          for (const n of [1, 2, 3]) await session.query('SELECT $1::int + 1 AS n', [n]);
          const { rows } = await session.query<{ name: string; statement: string }>(
            'SELECT name, statement FROM pg_prepared_statements',
          );
          return rows;
        });
        expect(prepared).toEqual(
          preparedStatements ? [{ name: 'tasks_0', statement: 'SELECT $1::int + 1 AS n' }] : [],
        );
      } finally {
        await db.end();
      }
    }
  });
});

describe('deadlocks', () => {
  it('when two transactions lock two rows in opposite orders, then PostgreSQL breaks the deadlock and the one it failed runs again and succeeds', async () => {
    const url = await createTestDatabase();
    const retried: string[] = [];
    const db = connect(url, { onRetry: (code) => retried.push(code) });
    try {
      await db.query('CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL)');
      await db.query('INSERT INTO counters VALUES (1, 0), (2, 0)');
      // Each takes its first row, then waits until the other has its own: a cycle.
      let firstTaken!: () => void;
      let secondTaken!: () => void;
      const both = Promise.all([
        new Promise<void>((resolve) => (firstTaken = resolve)),
        new Promise<void>((resolve) => (secondTaken = resolve)),
      ]);
      const bump = (first: number, second: number, taken: () => void) =>
        db.withTransaction(async (tx) => {
          await tx.query('UPDATE counters SET n = n + 1 WHERE id = $1', [first]);
          taken();
          await both;
          await tx.query('UPDATE counters SET n = n + 1 WHERE id = $1', [second]);
        });
      await Promise.all([bump(1, 2, firstTaken), bump(2, 1, secondTaken)]);
      expect(retried).toEqual(['40P01']);
      const { rows } = await db.query<{ id: number; n: number }>(
        'SELECT id, n FROM counters ORDER BY id',
      );
      expect(rows).toEqual([
        { id: 1, n: 2 },
        { id: 2, n: 2 },
      ]);
    } finally {
      await db.end();
    }
  });
});
