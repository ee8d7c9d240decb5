import { describe, expect, it } from 'vitest';
import { useTestApp } from './support/test-app.ts';

// A pool large enough that the racing requests meet in PostgreSQL, not in the pool's queue.
const { client, app } = useTestApp({ DATABASE_POOL_MAX: '25' });

describe('races', () => {
  it('when 50 PATCHes race with the same If-Match, then exactly one wins and the rest get 412', async () => {
    const { token } = await client.register();
    const task = (await client.post('/api/v1/tasks', { token, body: { title: 'contested' } })).body;
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        client.patch(`/api/v1/tasks/${task.id}`, {
          token,
          headers: { 'if-match': '"1"' },
          body: { title: `writer ${i}` },
        }),
      ),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 412)).toHaveLength(49);
    const winner = results.find((r) => r.status === 200)!.body;
    const stored = (await client.get(`/api/v1/tasks/${task.id}`, { token })).body;
    expect(stored).toEqual(winner);
    expect(stored.version).toBe(2);
  });

  it('when PATCHes without If-Match race on different fields, then no update is lost', async () => {
    const { token } = await client.register();
    const task = (await client.post('/api/v1/tasks', { token, body: { title: 'shared' } })).body;
    const results = await Promise.all([
      client.patch(`/api/v1/tasks/${task.id}`, { token, body: { completed: true } }),
      client.patch(`/api/v1/tasks/${task.id}`, { token, body: { notes: 'from device B' } }),
      client.patch(`/api/v1/tasks/${task.id}`, { token, body: { dueAt: '2030-01-01T00:00:00Z' } }),
    ]);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    const stored = (await client.get(`/api/v1/tasks/${task.id}`, { token })).body;
    expect(stored).toMatchObject({
      completed: true,
      notes: 'from device B',
      dueAt: '2030-01-01T00:00:00.000Z',
      version: 4,
    });
  });

  it('when 20 POSTs race with one Idempotency-Key, then one task exists and every response is the same', async () => {
    const user = await client.register();
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        client.post('/api/v1/tasks', {
          token: user.token,
          headers: { 'idempotency-key': 'race-1' },
          body: { title: 'once' },
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(201));
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    const count = await app().db.query('SELECT count(*)::int AS n FROM tasks WHERE user_id = $1', [
      user.id,
    ]);
    expect(count.rows[0]).toEqual({ n: 1 });
  });
});
