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
