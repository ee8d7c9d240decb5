import { describe, expect, it } from 'vitest';
import { purgeExpired } from '../src/housekeeping.ts';
import { useTestApp } from './support/test-app.ts';

const { client, app } = useTestApp();

const retention = { tombstoneRetentionSeconds: 30 * 86_400 };

const count = async (sql: string, params: unknown[]) =>
  (await app().db.query<{ n: number }>(sql, params)).rows[0]!.n;

describe('housekeeping', () => {
  it('when sessions, idempotency keys, rate-limit windows and known clients are past their time, then they are deleted and live ones kept', async () => {
    const stale = await client.register();
    const live = await client.register();
    for (const user of [stale, live]) {
      await client.post('/api/v1/tasks', {
        token: user.token,
        headers: { 'idempotency-key': 'k' },
        body: { title: 't' },
      });
    }
    await app().db.query(
      `UPDATE sessions SET expires_at = now() - interval '1 s' WHERE user_id = $1`,
      [stale.id],
    );
    await app().db.query(
      `UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE user_id = $1`,
      [stale.id],
    );

    await app().db.query(
      `UPDATE rate_limit_counters SET window_start = now() - interval '61 minutes'
       WHERE key = (SELECT 'account:' || email FROM users WHERE id = $1)`,
      [stale.id],
    );
    await app().db.query(
      `UPDATE known_devices SET last_used_at = now() - interval '366 days' WHERE user_id = $1`,
      [stale.id],
    );
    await app().db.query(
      `UPDATE known_addresses SET last_success_at = now() - interval '91 days' WHERE user_id = $1`,
      [stale.id],
    );

    const purged = await purgeExpired(app().db, retention);

    expect(purged).toEqual({
      sessions: 1,
      idempotencyKeys: 1,
      rateLimitCounters: 1,
      knownDevices: 1,
      knownAddresses: 1,
      tombstones: 0,
    });
    const ids = [stale.id, live.id];
    expect(
      await count('SELECT count(*)::int AS n FROM sessions WHERE user_id = ANY($1)', [ids]),
    ).toBe(1);
    expect(
      await count('SELECT count(*)::int AS n FROM idempotency_keys WHERE user_id = ANY($1)', [ids]),
    ).toBe(1);
    expect(
      await count('SELECT count(*)::int AS n FROM known_devices WHERE user_id = ANY($1)', [ids]),
    ).toBe(1);
    expect((await client.get('/api/v1/me', { token: live.token })).status).toBe(200);
  });

  it('when tombstones are past the retention, then they are purged and the user records how far', async () => {
    const user = await client.register();
    const other = await client.register();
    const ids: string[] = [];
    for (const owner of [user, user, user, other]) {
      const task = await client.post('/api/v1/tasks', { token: owner.token, body: { title: 't' } });
      ids.push(task.body.id);
      await client.delete(`/api/v1/tasks/${task.body.id}`, { token: owner.token });
    }
    const tombstones = await app().db.query<{ task_id: string; change_seq: string }>(
      'SELECT task_id, change_seq FROM task_tombstones WHERE user_id = $1 ORDER BY change_seq',
      [user.id],
    );
    const [first, second] = tombstones.rows;
    // The user's two oldest deletions are 31 days old, the third and the other user's are recent.
    await app().db.query(
      `UPDATE task_tombstones SET deleted_at = now() - interval '31 days'
       WHERE user_id = $1 AND task_id = ANY ($2)`,
      [user.id, [first!.task_id, second!.task_id]],
    );

    const purged = await purgeExpired(app().db, retention);

    expect(purged.tombstones).toBe(2);
    expect(
      await count('SELECT count(*)::int AS n FROM task_tombstones WHERE user_id = ANY($1)', [
        [user.id, other.id],
      ]),
    ).toBe(2);
    const horizons = await app().db.query<{ user_id: string; purged_change_seq: string }>(
      'SELECT user_id, purged_change_seq FROM task_change_counters WHERE user_id = ANY($1)',
      [[user.id, other.id]],
    );
    expect(Object.fromEntries(horizons.rows.map((r) => [r.user_id, r.purged_change_seq]))).toEqual({
      [user.id]: second!.change_seq,
      [other.id]: '0',
    });
  });

  it('when more tombstones are due than one batch holds, then every one is purged', async () => {
    const user = await client.register();
    await app().db.query(
      `INSERT INTO task_tombstones (user_id, task_id, change_seq, deleted_at)
       SELECT $1, gen_random_uuid(), n, now() - interval '40 days' FROM generate_series(1, 2500) n`,
      [user.id],
    );
    const purged = await purgeExpired(app().db, retention);
    expect(purged.tombstones).toBe(2500);
    expect(
      await count(
        'SELECT purged_change_seq::int AS n FROM task_change_counters WHERE user_id = $1',
        [user.id],
      ),
    ).toBe(2500);
  });
});
