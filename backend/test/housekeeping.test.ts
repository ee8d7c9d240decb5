import { describe, expect, it } from 'vitest';
import { purgeExpired } from '../src/housekeeping.ts';
import { useTestApp } from './support/test-app.ts';

const { client, app } = useTestApp();

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

    const purged = await purgeExpired(app().db);

    expect(purged).toEqual({
      sessions: 1,
      idempotencyKeys: 1,
      rateLimitCounters: 1,
      knownDevices: 1,
      knownAddresses: 1,
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
});
