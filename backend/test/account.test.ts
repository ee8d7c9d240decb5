import { describe, expect, it } from 'vitest';
import { api } from './support/api.ts';
import { expectNoDeadlockRetries, holdTransaction, lockWaiters } from './support/locks.ts';
import { startTestApp, useTestApp } from './support/test-app.ts';

const { client, app } = useTestApp();
// The tests of lock order here must see the deadlocks they guard against, not their retries.
expectNoDeadlockRetries(app);

const login = (email: string, password: string) =>
  client.post('/api/v1/auth/login', { body: { email, password } });

/** Rows of every table that holds something of the user. */
async function rowsOf(userId: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const [table, column] of [
    ['users', 'id'],
    ['tasks', 'user_id'],
    ['task_tombstones', 'user_id'],
    ['task_change_counters', 'user_id'],
    ['sessions', 'user_id'],
    ['known_devices', 'user_id'],
    ['known_addresses', 'user_id'],
    ['idempotency_keys', 'user_id'],
  ] as const) {
    const { rows } = await app().db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${table} WHERE ${column} = $1`,
      [userId],
    );
    counts[table] = rows[0]!.n;
  }
  return counts;
}

describe('deleting the account', () => {
  it('when the password is right, then 204, everything of the user is gone, and every token dies at once', async () => {
    const user = await client.register();
    const other = await login(user.email, user.password);
    for (let i = 0; i < 3; i++) {
      await client.post('/api/v1/tasks', {
        token: user.token,
        headers: { 'idempotency-key': `k${i}` },
        body: { title: `t${i}` },
      });
    }
    const doomed = await client.post('/api/v1/tasks', { token: user.token, body: { title: 'x' } });
    await client.delete(`/api/v1/tasks/${doomed.body.id}`, { token: user.token });
    const bystander = await client.register();
    await client.post('/api/v1/tasks', { token: bystander.token, body: { title: 'mine' } });
    expect(await rowsOf(user.id)).toEqual({
      users: 1,
      tasks: 3,
      task_tombstones: 1,
      task_change_counters: 1,
      sessions: 2,
      known_devices: 2,
      known_addresses: 1,
      idempotency_keys: 3,
    });

    const res = await client.delete('/api/v1/me', {
      token: user.token,
      body: { currentPassword: user.password },
    });

    expect(res.status).toBe(204);
    expect(await rowsOf(user.id)).toEqual({
      users: 0,
      tasks: 0,
      task_tombstones: 0,
      task_change_counters: 0,
      sessions: 0,
      known_devices: 0,
      known_addresses: 0,
      idempotency_keys: 0,
    });
    expect((await client.get('/api/v1/me', { token: user.token })).status).toBe(401);
    expect((await client.get('/api/v1/tasks', { token: other.body.token })).status).toBe(401);
    expect((await login(user.email, user.password)).status).toBe(401);
    // The email is free again, and nobody else lost anything.
    expect(
      (
        await client.post('/api/v1/auth/register', {
          body: { email: user.email, password: user.password },
        })
      ).status,
    ).toBe(201);
    expect((await rowsOf(bystander.id)).tasks).toBe(1);
  });

  it('when the password is wrong, then 403 wrong-password (not 401: the token is fine) and nothing is deleted', async () => {
    const user = await client.register();
    await client.post('/api/v1/tasks', { token: user.token, body: { title: 'keep' } });
    const res = await client.delete('/api/v1/me', {
      token: user.token,
      body: { currentPassword: 'not the password' },
    });
    expect(res.status).toBe(403);
    expect(res.body.type).toBe('urn:tasks-backend:problem:wrong-password');
    expect((await rowsOf(user.id)).tasks).toBe(1);
    expect((await client.get('/api/v1/me', { token: user.token })).status).toBe(200);
  });

  it.each([
    ['no body', undefined],
    ['no password', {}],
    ['an unknown field', { currentPassword: 'x', confirm: true }],
    ['a password too long to check', { currentPassword: 'x'.repeat(201) }],
  ])('when the body has %s, then 400 and nothing is deleted', async (_case, body) => {
    const user = await client.register();
    const res = await client.delete('/api/v1/me', { token: user.token, ...(body && { body }) });
    expect(res.status).toBe(400);
    expect((await rowsOf(user.id)).users).toBe(1);
  });

  it('when task writes are in flight, then the deletion neither deadlocks nor leaves anything', async () => {
    // A writer that has locked its task and is about to take the change counter: a deletion that
    // took the counter before the tasks would wait for the task while holding the counter, and
    // the writer for the counter: a deadlock, which PostgreSQL breaks by failing one of them.
    const user = await client.register();
    const task = (await client.post('/api/v1/tasks', { token: user.token, body: { title: 't' } }))
      .body;
    const writer = holdTransaction(
      app().db,
      (tx) => tx.query('SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE', [task.id]),
      async (tx) => {
        await tx.query(`UPDATE tasks SET title = 'late edit' WHERE id = $1`, [task.id]);
      },
    );
    await writer.held;
    const deletion = client.delete('/api/v1/me', {
      token: user.token,
      body: { currentPassword: user.password },
    });
    await lockWaiters(app().db, 1, 'the deletion to wait for the task lock');
    writer.release();
    expect(await writer.outcome).toBe('committed');
    expect((await deletion).status).toBe(204);
    expect(await rowsOf(user.id)).toEqual({
      users: 0,
      tasks: 0,
      task_tombstones: 0,
      task_change_counters: 0,
      sessions: 0,
      known_devices: 0,
      known_addresses: 0,
      idempotency_keys: 0,
    });
  });

  it('when a task insert has taken the change counter but not yet checked its user, then the deletion waits for it instead of deadlocking', async () => {
    // The insert's trigger takes the counter row; its foreign key check then needs the user row.
    // Deleting the user row first and letting the cascade reach the counter would lock the two
    // in the opposite order.
    const user = await client.register();
    // An earlier task write created the counter row (its first creation also locks the user).
    const first = await client.post('/api/v1/tasks', { token: user.token, body: { title: 'a' } });
    await client.delete(`/api/v1/tasks/${first.body.id}`, { token: user.token });
    const writer = holdTransaction(
      app().db,
      (tx) => tx.query('SELECT next_change_seq($1)', [user.id]), // what the trigger does first
      async (tx) => {
        await tx.query(`INSERT INTO tasks (user_id, title) VALUES ($1, 'racing')`, [user.id]);
      },
    );
    await writer.held;
    const deletion = client.delete('/api/v1/me', {
      token: user.token,
      body: { currentPassword: user.password },
    });
    await lockWaiters(app().db, 1, 'the deletion to wait for a lock');
    writer.release();
    expect(await writer.outcome).toBe('committed');
    expect((await deletion).status).toBe(204);
    expect(Object.values(await rowsOf(user.id))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it("when the housekeeping is purging the user's tombstones, then the deletion waits for it instead of deadlocking", async () => {
    // The purge deletes tombstones, then records its horizon on the change counter; a deletion
    // that took the counter before the tombstones would lock the two the other way round.
    const user = await client.register();
    const doomed = await client.post('/api/v1/tasks', { token: user.token, body: { title: 'x' } });
    await client.delete(`/api/v1/tasks/${doomed.body.id}`, { token: user.token });
    const purge = holdTransaction(
      app().db,
      (tx) => tx.query('DELETE FROM task_tombstones WHERE user_id = $1', [user.id]),
      async (tx) => {
        await tx.query(
          'UPDATE task_change_counters SET purged_change_seq = change_seq WHERE user_id = $1',
          [user.id],
        );
      },
    );
    await purge.held;
    const deletion = client.delete('/api/v1/me', {
      token: user.token,
      body: { currentPassword: user.password },
    });
    await lockWaiters(app().db, 1, 'the deletion to wait for a lock');
    purge.release();
    expect(await purge.outcome).toBe('committed');
    expect((await deletion).status).toBe(204);
    expect(Object.values(await rowsOf(user.id))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it.each([
    ['without an Idempotency-Key', {}],
    ['with an Idempotency-Key', { 'idempotency-key': 'racing' }],
  ])(
    'when a task is created %s while the account is being deleted, then 401, not a 500',
    async (_case, headers) => {
      const user = await client.register();
      // The deletion holds the user's row from its first statement to its commit.
      const deletion = holdTransaction(
        app().db,
        (tx) => tx.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [user.id]),
        async (tx) => {
          await tx.query('DELETE FROM users WHERE id = $1', [user.id]);
        },
      );
      await deletion.held;
      const creating = client.post('/api/v1/tasks', {
        token: user.token,
        headers,
        body: { title: 'too late' },
      });
      await lockWaiters(app().db, 1, 'the create to wait for the user row');
      deletion.release();
      expect(await deletion.outcome).toBe('committed');
      const res = await creating;
      expect(res.status).toBe(401);
      expect((await rowsOf(user.id)).tasks).toBe(0);
    },
  );
});

describe('changing the password', () => {
  it('when the current password is right, then 204, the new one works, the old does not, and only the other sessions end', async () => {
    const user = await client.register();
    const phone = (await login(user.email, user.password)).body.token;
    const tablet = (await login(user.email, user.password)).body.token;
    const before = await app().db.query<{ password_hash: string }>(
      'SELECT password_hash FROM users WHERE id = $1',
      [user.id],
    );

    const res = await client.post('/api/v1/me/password', {
      token: user.token,
      body: { currentPassword: user.password, newPassword: 'a brand new password' },
    });

    expect(res.status).toBe(204);
    expect((await client.get('/api/v1/me', { token: user.token })).status).toBe(200);
    expect((await client.get('/api/v1/me', { token: phone })).status).toBe(401);
    expect((await client.get('/api/v1/me', { token: tablet })).status).toBe(401);
    expect((await login(user.email, user.password)).status).toBe(401);
    expect((await login(user.email, 'a brand new password')).status).toBe(200);
    const after = await app().db.query<{ password_hash: string }>(
      'SELECT password_hash FROM users WHERE id = $1',
      [user.id],
    );
    expect(after.rows[0]!.password_hash).toMatch(/^scrypt\$/);
    expect(after.rows[0]!.password_hash).not.toBe(before.rows[0]!.password_hash);
  });

  it('when the current password is wrong, then 403 and nothing changes', async () => {
    const user = await client.register();
    const phone = (await login(user.email, user.password)).body.token;
    const res = await client.post('/api/v1/me/password', {
      token: user.token,
      body: { currentPassword: 'wrong password', newPassword: 'a brand new password' },
    });
    expect(res.status).toBe(403);
    expect((await client.get('/api/v1/me', { token: phone })).status).toBe(200);
    expect((await login(user.email, user.password)).status).toBe(200);
  });

  it('when the new password is too short, then 400 naming newPassword', async () => {
    const user = await client.register();
    const res = await client.post('/api/v1/me/password', {
      token: user.token,
      body: { currentPassword: user.password, newPassword: 'short' },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { name: string }) => e.name)).toEqual(['newPassword']);
  });
});

describe('sessions', () => {
  it('when sessions are listed, then each has an id, its times and whether it is the current one, and never a token or hash', async () => {
    const user = await client.register();
    const phone = (await login(user.email, user.password)).body.token;
    const res = await client.get('/api/v1/me/sessions', { token: phone });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body.items).toHaveLength(2);
    for (const session of res.body.items) {
      expect(Object.keys(session).sort()).toEqual([
        'createdAt',
        'current',
        'expiresAt',
        'id',
        'lastUsedAt',
      ]);
    }
    expect(res.body.items.filter((s: { current: boolean }) => s.current)).toHaveLength(1);
    expect(res.text).not.toContain(phone);
    expect(res.text).not.toContain(user.token);
    const { rows } = await app().db.query<{ token_hash: Buffer }>(
      'SELECT token_hash FROM sessions WHERE user_id = $1',
      [user.id],
    );
    for (const { token_hash } of rows) {
      for (const encoding of ['hex', 'base64', 'base64url'] as const) {
        expect(res.text).not.toContain(token_hash.toString(encoding));
      }
    }
  });

  it('when a session is revoked by id, then its token dies and the others live', async () => {
    const user = await client.register();
    const phone = (await login(user.email, user.password)).body.token;
    const list = await client.get('/api/v1/me/sessions', { token: user.token });
    const phoneSession = list.body.items.find((s: { current: boolean }) => !s.current);

    const res = await client.delete(`/api/v1/me/sessions/${phoneSession.id}`, {
      token: user.token,
    });

    expect(res.status).toBe(204);
    expect((await client.get('/api/v1/me', { token: phone })).status).toBe(401);
    expect((await client.get('/api/v1/me', { token: user.token })).status).toBe(200);
    const again = await client.delete(`/api/v1/me/sessions/${phoneSession.id}`, {
      token: user.token,
    });
    expect(again.status).toBe(404);
  });

  it("when another user's session id is revoked, then 404 exactly as for a missing one, and it lives on", async () => {
    const alice = await client.register();
    const bob = await client.register();
    const bobsSession = (await client.get('/api/v1/me/sessions', { token: bob.token })).body
      .items[0];
    const theirs = await client.delete(`/api/v1/me/sessions/${bobsSession.id}`, {
      token: alice.token,
    });
    const missing = await client.delete(
      '/api/v1/me/sessions/00000000-0000-4000-8000-000000000000',
      {
        token: alice.token,
      },
    );
    expect(theirs.status).toBe(404);
    expect(theirs.text).toBe(missing.text);
    expect((await client.get('/api/v1/me', { token: bob.token })).status).toBe(200);
    expect(
      (await client.delete('/api/v1/me/sessions/not-a-uuid', { token: alice.token })).status,
    ).toBe(400);
  });

  it('when logout-all is called, then every session of the user ends, the caller included, and no one else', async () => {
    const user = await client.register();
    const phone = (await login(user.email, user.password)).body.token;
    const bystander = await client.register();
    expect((await client.post('/api/v1/auth/logout-all', { token: phone })).status).toBe(204);
    for (const token of [user.token, phone]) {
      expect((await client.get('/api/v1/me', { token })).status).toBe(401);
    }
    expect((await client.get('/api/v1/me', { token: bystander.token })).status).toBe(200);
    expect((await rowsOf(user.id)).sessions).toBe(0);
  });
});

describe('sliding sessions', () => {
  const session = async (userId: string) =>
    (
      await app().db.query<{ expires_at: Date; last_used_at: Date | null; xmin: string }>(
        'SELECT expires_at, last_used_at, xmin::text FROM sessions WHERE user_id = $1',
        [userId],
      )
    ).rows[0]!;
  const ttlMs = 30 * 86_400_000;

  it('when a fresh token is used, then its session row is not written at all', async () => {
    const user = await client.register();
    const before = await session(user.id);
    for (let i = 0; i < 5; i++) await client.get('/api/v1/me', { token: user.token });
    expect(await session(user.id)).toEqual(before);
  });

  it('when a token is used in the last third of its life, then it is extended to the full lifetime again, once', async () => {
    const user = await client.register();
    await app().db.query(
      `UPDATE sessions SET expires_at = now() + interval '9 days' WHERE user_id = $1`,
      [user.id],
    );
    expect((await client.get('/api/v1/me', { token: user.token })).status).toBe(200);
    const extended = await session(user.id);
    expect(extended.expires_at.getTime() - Date.now()).toBeGreaterThan(ttlMs - 60_000);
    expect(extended.expires_at.getTime() - Date.now()).toBeLessThanOrEqual(ttlMs);
    await client.get('/api/v1/me', { token: user.token });
    expect(await session(user.id)).toEqual(extended);
  });

  it('when a token is used before its last third, then its expiry stays', async () => {
    const user = await client.register();
    await app().db.query(
      `UPDATE sessions SET expires_at = now() + interval '11 days',
                           last_used_at = now() - interval '2 hours' WHERE user_id = $1`,
      [user.id],
    );
    const before = await session(user.id);
    await client.get('/api/v1/me', { token: user.token });
    const after = await session(user.id);
    expect(after.expires_at).toEqual(before.expires_at);
    expect(after.last_used_at!.getTime()).toBeGreaterThan(before.last_used_at!.getTime());
  });

  it('when the absolute maximum is near, then the extension stops there, and the token dies at it', async () => {
    const user = await client.register();
    // Created 364 days ago (the maximum is 365), and in its last third.
    await app().db.query(
      `UPDATE sessions SET created_at = now() - interval '364 days',
                           expires_at = now() + interval '1 day' WHERE user_id = $1`,
      [user.id],
    );
    await client.get('/api/v1/me', { token: user.token });
    const capped = await session(user.id);
    expect(capped.expires_at.getTime() - Date.now()).toBeGreaterThan(86_400_000 - 60_000);
    expect(capped.expires_at.getTime() - Date.now()).toBeLessThanOrEqual(86_400_000);
    // At the cap, later requests do not write again.
    await client.get('/api/v1/me', { token: user.token });
    expect(await session(user.id)).toEqual(capped);
    await app().db.query(
      `UPDATE sessions SET created_at = now() - interval '365 days 1 second' WHERE user_id = $1`,
      [user.id],
    );
    expect((await client.get('/api/v1/me', { token: user.token })).status).toBe(401);
  });

  it('when lastUsedAt is more than an hour old, then a request refreshes it; within the hour it stays', async () => {
    const user = await client.register();
    await app().db.query(
      `UPDATE sessions SET last_used_at = now() - interval '61 minutes' WHERE user_id = $1`,
      [user.id],
    );
    await client.get('/api/v1/me', { token: user.token });
    const refreshed = await session(user.id);
    expect(Date.now() - refreshed.last_used_at!.getTime()).toBeLessThan(60_000);
    const listed = (await client.get('/api/v1/me/sessions', { token: user.token })).body.items[0];
    expect(listed.lastUsedAt).toBe(refreshed.last_used_at!.toISOString());
    expect(await session(user.id)).toEqual(refreshed);
  });

  it('when AUTH_SESSION_MAX_LIFETIME_SECONDS is set, then no session outlives it', async () => {
    const short = await startTestApp({
      AUTH_TOKEN_TTL_SECONDS: '60',
      AUTH_SESSION_MAX_LIFETIME_SECONDS: '90',
    });
    try {
      const shortClient = api(short.baseUrl);
      const user = await shortClient.register();
      await short.db.query(
        `UPDATE sessions SET created_at = now() - interval '80 seconds',
                             expires_at = now() + interval '10 seconds' WHERE user_id = $1`,
        [user.id],
      );
      expect((await shortClient.get('/api/v1/me', { token: user.token })).status).toBe(200);
      const { rows } = await short.db.query<{ left: number }>(
        `SELECT extract(epoch FROM expires_at - created_at)::int AS left FROM sessions WHERE user_id = $1`,
        [user.id],
      );
      expect(rows[0]!.left).toBe(90);
    } finally {
      await short.close();
    }
  });
});

describe('throttling', () => {
  it('when wrong current passwords are tried too often, then password change and deletion get 429 like sign-ins, from every session of the account', async () => {
    const limited = await startTestApp({ AUTH_RATE_LIMIT_PER_MINUTE: '3' });
    const limitedClient = api(limited.baseUrl);
    try {
      const user = await limitedClient.register();
      const second = await limitedClient.post('/api/v1/auth/login', {
        body: { email: user.email, password: user.password },
      });
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const attempt =
          i % 2 === 0
            ? limitedClient.post('/api/v1/me/password', {
                token: user.token,
                body: { currentPassword: `guess ${i}`, newPassword: 'a brand new password' },
              })
            : limitedClient.delete('/api/v1/me', {
                token: user.token,
                body: { currentPassword: `guess ${i}` },
              });
        const res = await attempt;
        statuses.push(res.status);
        if (res.status === 403)
          expect(res.headers.get('ratelimit')).toMatch(/^"auth";r=\d+;t=\d+$/);
      }
      expect(statuses).toEqual([403, 403, 403, 429]);
      // The right password does not help now, nor does another session of the same account.
      for (const token of [user.token, second.body.token as string]) {
        const blocked = await limitedClient.delete('/api/v1/me', {
          token,
          body: { currentPassword: user.password },
        });
        expect(blocked.status).toBe(429);
        expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      }
      const { rows } = await limited.db.query('SELECT 1 FROM users WHERE id = $1', [user.id]);
      expect(rows).toHaveLength(1);
    } finally {
      await limited.close();
    }
  });

  it("when strangers fail to sign in to the account, then its owner's password checks are not blocked", async () => {
    const limited = await startTestApp({ AUTH_RATE_LIMIT_PER_MINUTE: '3' });
    const limitedClient = api(limited.baseUrl);
    try {
      const user = await limitedClient.register();
      const signIns: number[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await limitedClient.post('/api/v1/auth/login', {
          body: { email: user.email, password: `stranger ${i}` },
          headers: { 'x-forwarded-for': `198.51.100.${i + 1}` },
        });
        signIns.push(res.status);
      }
      expect(signIns.at(-1)).toBe(429);
      const change = await limitedClient.post('/api/v1/me/password', {
        token: user.token,
        body: { currentPassword: user.password, newPassword: 'a brand new password' },
      });
      expect(change.status).toBe(204);
      expect(change.headers.get('ratelimit-policy')).toBe('"auth";q=3;w=60');
    } finally {
      await limited.close();
    }
  });
});
