import { describe, expect, it } from 'vitest';
import { purgeExpired } from '../src/housekeeping.ts';
import { SyncClient, listAll } from './support/sync-client.ts';
import { useTestApp } from './support/test-app.ts';

const { client, app } = useTestApp();

const create = async (token: string, body: Record<string, unknown>) => {
  const res = await client.post('/api/v1/tasks', { token, body });
  expect(res.status).toBe(201);
  return res.body;
};

const changes = (token: string, query = '') =>
  client.get(`/api/v1/tasks/changes${query}`, { token });

/** A token as the server writes one, with any fields: for forgeries. */
const forge = (payload: unknown) => Buffer.from(JSON.stringify(payload)).toString('base64url');

describe('delta sync', () => {
  it('when there is no since, then every live task comes back, no tombstones, and a token', async () => {
    const { token } = await client.register();
    const kept = await create(token, { title: 'kept' });
    const gone = await create(token, { title: 'gone' });
    await client.delete(`/api/v1/tasks/${gone.id}`, { token });

    const res = await changes(token);

    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body).toEqual({
      changes: [kept],
      deleted: [],
      next: expect.any(String),
      hasMore: false,
    });
  });

  it('when tasks are created, changed and deleted after a sync, then the next sync returns exactly those, as they are now', async () => {
    const { token } = await client.register();
    const untouched = await create(token, { title: 'untouched' });
    const edited = await create(token, { title: 'edited' });
    const removed = await create(token, { title: 'removed' });
    const first = await changes(token);

    const patched = await client.patch(`/api/v1/tasks/${edited.id}`, {
      token,
      body: { completed: true },
    });
    await client.delete(`/api/v1/tasks/${removed.id}`, { token });
    const added = await create(token, { title: 'added' });
    const second = await changes(token, `?since=${first.body.next}`);

    expect(second.body.changes).toEqual([patched.body, added]);
    expect(second.body.deleted).toEqual([{ id: removed.id, deletedAt: expect.any(String) }]);
    expect(second.body.changes.map((t: { id: string }) => t.id)).not.toContain(untouched.id);
    // The tombstone is stored, numbered by the user's counter.
    const stored = await app().db.query<{ deleted_at: Date }>(
      'SELECT deleted_at FROM task_tombstones WHERE task_id = $1',
      [removed.id],
    );
    expect(stored.rows[0]!.deleted_at.toISOString()).toBe(second.body.deleted[0].deletedAt);

    const third = await changes(token, `?since=${second.body.next}`);
    expect(third.body).toMatchObject({ changes: [], deleted: [], hasMore: false });
    expect(third.body.next).toBe(second.body.next);
  });

  it('when there are more changes than the limit, then pages follow next in commit order until hasMore is false', async () => {
    const { token } = await client.register();
    const made = [];
    for (let i = 0; i < 7; i++) made.push(await create(token, { title: `t${i}` }));
    await client.delete(`/api/v1/tasks/${made[2].id}`, { token });
    await client.patch(`/api/v1/tasks/${made[0].id}`, { token, body: { title: 't0 again' } });

    const sync = new SyncClient(client, token, 2);
    const pages = [];
    do pages.push(await sync.step());
    while (pages.at(-1)!.hasMore);

    expect(pages.length).toBeGreaterThanOrEqual(3);
    expect(pages.every((p) => p.changes.length + p.deleted.length <= 2)).toBe(true);
    expect(pages.slice(0, -1).every((p) => p.changes.length + p.deleted.length === 2)).toBe(true);
    expect(sync.replica()).toEqual(await listAll(client, token));
  });

  it('when a sync is resumed after a full sync, then later deletions of tasks it saw arrive', async () => {
    const { token } = await client.register();
    const a = await create(token, { title: 'a' });
    const b = await create(token, { title: 'b' });
    const sync = new SyncClient(client, token, 1);
    await sync.step(); // a full sync's first page: one task
    await client.delete(`/api/v1/tasks/${a.id}`, { token });
    await client.patch(`/api/v1/tasks/${b.id}`, { token, body: { notes: 'n' } });
    await sync.catchUp();
    expect(sync.replica()).toEqual(await listAll(client, token));
    expect([...sync.tasks.keys()]).toEqual([b.id]);
  });

  it.each([
    ['not base64 JSON', '%%%'],
    ['JSON of another shape', forge({ hello: 'world' })],
    ['an unknown version', forge({ v: 2, u: '00000000-0000-4000-8000-000000000000', s: 1 })],
    ['a negative position', 'NEGATIVE'],
    ['too long', 'x'.repeat(301)],
  ])('when since is %s, then 400 naming since', async (_case, since) => {
    const user = await client.register();
    const token = since === 'NEGATIVE' ? forge({ v: 1, u: user.id, s: -5 }) : since;
    const res = await changes(user.token, `?since=${encodeURIComponent(token)}`);
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([{ name: 'since', in: 'query', reason: expect.any(String) }]);
  });

  it("when since is another user's token, then 400: a token is a position in one user's changes", async () => {
    const alice = await client.register();
    const bob = await client.register();
    await create(alice.token, { title: 'private' });
    const alicesToken = (await changes(alice.token)).body.next;
    const res = await changes(bob.token, `?since=${alicesToken}`);
    expect(res.status).toBe(400);
    expect(res.text).not.toContain('private');
  });

  it('when since is ahead of the server (a database restored from a backup), then 410: resync from scratch', async () => {
    const user = await client.register();
    await create(user.token, { title: 'x' });
    const next = (await changes(user.token)).body.next;
    await app().db.query('UPDATE task_change_counters SET change_seq = 0 WHERE user_id = $1', [
      user.id,
    ]);
    const res = await changes(user.token, `?since=${next}`);
    expect(res.status).toBe(410);
    expect(res.body.type).toBe('urn:tasks-backend:problem:sync-token-expired');
    expect(res.body.detail).toMatch(/omit `since`/);
  });

  it('when deletions after a token were purged, then 410; a token taken after them still works', async () => {
    const { token, id } = await client.register();
    const task = await create(token, { title: 'doomed' });
    const old = (await changes(token)).body.next;
    await client.delete(`/api/v1/tasks/${task.id}`, { token });
    const recent = (await changes(token, `?since=${old}`)).body.next;
    await app().db.query(
      `UPDATE task_tombstones SET deleted_at = now() - interval '31 days' WHERE user_id = $1`,
      [id],
    );
    await purgeExpired(app().db, { tombstoneRetentionSeconds: 30 * 86_400 });

    const stale = await changes(token, `?since=${old}`);
    expect(stale.status).toBe(410);
    expect(stale.body.detail).toMatch(/no longer remembered/);
    const fresh = await changes(token, `?since=${recent}`);
    expect(fresh.status).toBe(200);
    // Starting over works, and shows the task gone.
    const restart = await changes(token);
    expect(restart.body.changes).toEqual([]);
  });

  it('when a token is old but nothing after it was purged, then it still works (only a lost deletion makes 410)', async () => {
    const { token, id } = await client.register();
    const task = await create(token, { title: 'old' });
    await client.delete(`/api/v1/tasks/${task.id}`, { token });
    const after = (await changes(token)).body.next;
    await app().db.query(
      `UPDATE task_tombstones SET deleted_at = now() - interval '31 days' WHERE user_id = $1`,
      [id],
    );
    await purgeExpired(app().db, { tombstoneRetentionSeconds: 30 * 86_400 });
    const added = await create(token, { title: 'new' });
    const res = await changes(token, `?since=${after}`);
    expect(res.status).toBe(200);
    expect(res.body.changes).toEqual([added]);
  });

  it("when another user writes, then this user's sync sees none of it", async () => {
    const alice = await client.register();
    const bob = await client.register();
    const next = (await changes(alice.token)).body.next;
    const bobs = await create(bob.token, { title: 'bob' });
    await client.delete(`/api/v1/tasks/${bobs.id}`, { token: bob.token });
    const res = await changes(alice.token, `?since=${next}`);
    expect(res.body).toMatchObject({ changes: [], deleted: [], hasMore: false, next });
  });

  it('when another method is used on /api/v1/tasks/changes, then 404 route-not-found: it is not a task id', async () => {
    const { token } = await client.register();
    for (const method of ['PATCH', 'DELETE', 'POST'] as const) {
      const res = await client.request(method, '/api/v1/tasks/changes', { token });
      expect(res.status).toBe(404);
      expect(res.body.type).toBe('urn:tasks-backend:problem:route-not-found');
    }
  });

  it('when limit is out of range or not an integer, then 400', async () => {
    const { token } = await client.register();
    for (const limit of ['0', '501', '1e2', 'ten']) {
      expect((await changes(token, `?limit=${limit}`)).status).toBe(400);
    }
    expect((await changes(token, '?limit=500')).status).toBe(200);
  });
});

describe('writers the server does not control', () => {
  /**
   * The statements of release 0.1.0 (backend/src/tasks/repository.ts at c5134b1), which runs beside
   * this one during a rolling deploy: the triggers must number its writes, keep completed_at and
   * leave tombstones, or a syncing client would miss them.
   */
  const previousRelease = {
    insert: `
      INSERT INTO tasks (user_id, title, notes, completed, due_at, created_at, updated_at)
      SELECT $1, $2, COALESCE($3, ''), COALESCE($4, false), $5, now.t, now.t
      FROM (SELECT date_trunc('milliseconds', clock_timestamp()) AS t) now
      RETURNING id, title, notes, completed, due_at, created_at, updated_at, version`,
    complete: `
      UPDATE tasks
      SET completed = $3, version = version + 1,
          updated_at = date_trunc('milliseconds', clock_timestamp())
      WHERE id = $1 AND user_id = $2 AND ($4::integer[] IS NULL OR version = ANY ($4))
      RETURNING id, title, notes, completed, due_at, created_at, updated_at, version`,
    delete: `
      DELETE FROM tasks
      WHERE id = $1 AND user_id = $2 AND ($3::integer[] IS NULL OR version = ANY ($3))`,
  };

  it('when the previous release creates, completes and deletes tasks, then sync sees every write and completedAt follows completed', async () => {
    const { token, id: userId } = await client.register();
    const sync = new SyncClient(client, token);
    await sync.catchUp();
    const db = app().db;

    const inserted = await db.query<{ id: string }>(previousRelease.insert, [
      userId,
      'from 0.1.0',
      null,
      true,
      null,
    ]);
    const second = await db.query<{ id: string }>(previousRelease.insert, [
      userId,
      'also from 0.1.0',
      null,
      null,
      null,
    ]);
    const firstId = inserted.rows[0]!.id;
    const secondId = second.rows[0]!.id;
    await sync.catchUp();
    expect(sync.tasks.get(firstId)).toMatchObject({
      completed: true,
      completedAt: expect.any(String),
    });
    expect(sync.tasks.get(firstId)!.completedAt).toBe(sync.tasks.get(firstId)!.updatedAt);

    await db.query(previousRelease.complete, [firstId, userId, false, null]);
    await db.query(previousRelease.complete, [secondId, userId, true, null]);
    await sync.catchUp();
    expect(sync.tasks.get(firstId)).toMatchObject({ completed: false, completedAt: null });
    expect(sync.tasks.get(secondId)!.completedAt).toBe(sync.tasks.get(secondId)!.updatedAt);

    await db.query(previousRelease.delete, [firstId, userId, null]);
    await sync.catchUp();
    expect(sync.tasks.has(firstId)).toBe(false);
    expect(sync.replica()).toEqual(await listAll(client, token));
  });

  it('when an operator deletes a user in psql, then the cascade goes through and leaves nothing behind', async () => {
    const user = await client.register();
    for (let i = 0; i < 3; i++) await create(user.token, { title: `t${i}` });
    const doomed = await create(user.token, { title: 'deleted before' });
    await client.delete(`/api/v1/tasks/${doomed.id}`, { token: user.token });

    await app().db.query('DELETE FROM users WHERE id = $1', [user.id]);

    for (const table of ['tasks', 'task_tombstones', 'task_change_counters', 'sessions']) {
      const left = await app().db.query(
        `SELECT count(*)::int AS n FROM ${table} WHERE user_id = $1`,
        [user.id],
      );
      expect(left.rows[0], table).toEqual({ n: 0 });
    }
  });

  it('when ids are UUIDs PostgreSQL accepts but RFC 9562 does not name, then they are read, listed, paged, synced and deleted like any other', async () => {
    // Version and variant bits outside RFC 9562: rows restored from elsewhere, or a client's own
    // scheme. They were once stored but unreadable: a cursor or sync token naming one was refused.
    const { token, id: userId } = await client.register();
    const imported = '12345678-1234-1234-1234-123456789abc';
    await app().db.query(`INSERT INTO tasks (id, user_id, title) VALUES ($1, $2, 'imported')`, [
      imported,
      userId,
    ]);
    const offline = await create(token, { id: '00000000-0000-0000-0000-000000000001', title: 'b' });
    expect(offline.id).toBe('00000000-0000-0000-0000-000000000001');
    const patched = await client.patch(`/api/v1/tasks/${imported}`, {
      token,
      body: { completed: true },
    });
    expect(patched.status, patched.text).toBe(200);

    for (const sort of ['createdAt', 'updatedAt', 'dueAt']) {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const query: string = `?limit=1&sort=${sort}${cursor ? `&cursor=${cursor}` : ''}`;
        const res = await client.get(`/api/v1/tasks${query}`, { token });
        expect(res.status, `sort=${sort}: ${res.text}`).toBe(200);
        seen.push(...res.body.items.map((t: { id: string }) => t.id));
        cursor = res.body.nextCursor;
      } while (cursor);
      expect(seen.toSorted(), sort).toEqual([offline.id, imported].toSorted());
    }

    const sync = new SyncClient(client, token, 1);
    await sync.catchUp();
    expect(sync.replica()).toEqual(await listAll(client, token));
    expect((await client.delete(`/api/v1/tasks/${imported}`, { token })).status).toBe(204);
    await sync.catchUp();
    expect([...sync.tasks.keys()]).toEqual([offline.id]);
  });

  it('when an operator re-inserts a deleted id, then it is refused until its tombstone is removed', async () => {
    const user = await client.register();
    const task = await create(user.token, { title: 'gone' });
    await client.delete(`/api/v1/tasks/${task.id}`, { token: user.token });
    const reinsert = () =>
      app().db.query(`INSERT INTO tasks (id, user_id, title) VALUES ($1, $2, 'back')`, [
        task.id,
        user.id,
      ]);
    await expect(reinsert()).rejects.toMatchObject({ code: 'TK001' });
    await app().db.query('DELETE FROM task_tombstones WHERE task_id = $1', [task.id]);
    await reinsert();
    const res = await changes(user.token);
    expect(res.body.changes.map((t: { id: string }) => t.id)).toEqual([task.id]);
  });
});
