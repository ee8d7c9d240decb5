import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { expectNoDeadlockRetries, holdTransaction, lockWaiters } from './support/locks.ts';
import { useTestApp } from './support/test-app.ts';

/** Tasks created offline carry the id their device gave them; retries must be safe. */

const { client, app } = useTestApp();
// The tests of lock order here must see the deadlocks they guard against, not their retries.
expectNoDeadlockRetries(app);

const post = (token: string, body: Record<string, unknown>, headers = {}) =>
  client.post('/api/v1/tasks', { token, body, headers });

const countTasks = async (userId: string) =>
  (
    await app().db.query<{ n: number }>('SELECT count(*)::int AS n FROM tasks WHERE user_id = $1', [
      userId,
    ])
  ).rows[0]!.n;

describe('client-chosen ids', () => {
  it('when a task is created with an id, then it has that id, in lower case, at its Location', async () => {
    const { token } = await client.register();
    const id = randomUUID().toUpperCase(); // iOS's UUID().uuidString is upper case
    const res = await post(token, { id, title: 'made offline' });
    expect(res.status).toBe(201);
    expect(res.body.id).toBe(id.toLowerCase());
    expect(res.headers.get('location')).toBe(`/api/v1/tasks/${id.toLowerCase()}`);
    expect(res.headers.get('idempotent-replayed')).toBeNull();
    expect((await client.get(`/api/v1/tasks/${id}`, { token })).body).toEqual(res.body);
  });

  it('when the same id and body are sent again, then 201 replayed with the task as it is now, and one row', async () => {
    const user = await client.register();
    const id = randomUUID();
    const body = { id, title: 'Milk', dueAt: '2030-01-01T00:00:00Z' };
    const first = await post(user.token, body);
    const edited = await client.patch(`/api/v1/tasks/${id}`, {
      token: user.token,
      body: { completed: true },
    });
    // The same request: keys in another order, the instant written another way, the id in upper case.
    const retry = await post(user.token, {
      dueAt: '2030-01-01T01:00:00+01:00',
      title: 'Milk',
      id: id.toUpperCase(),
    });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.headers.get('etag')).toBe('"2"');
    expect(retry.body).toEqual(edited.body);
    expect(retry.body.createdAt).toBe(first.body.createdAt);
    expect(await countTasks(user.id)).toBe(1);
  });

  it('when the same id comes with another body, then 409 and the task is unchanged', async () => {
    const user = await client.register();
    const id = randomUUID();
    const first = await post(user.token, { id, title: 'A' });
    const res = await post(user.token, { id, title: 'B' });
    expect(res.status).toBe(409);
    expect(res.body.type).toBe('urn:tasks-backend:problem:conflict');
    expect((await client.get(`/api/v1/tasks/${id}`, { token: user.token })).body).toEqual(
      first.body,
    );
  });

  it('when the task of that id was deleted, then a late retry gets 409 task-deleted and nothing comes back', async () => {
    const user = await client.register();
    const id = randomUUID();
    await post(user.token, { id, title: 'A' });
    await client.delete(`/api/v1/tasks/${id}`, { token: user.token });
    for (const body of [
      { id, title: 'A' },
      { id, title: 'other' },
    ]) {
      const res = await post(user.token, body);
      expect(res.status).toBe(409);
      expect(res.body.type).toBe('urn:tasks-backend:problem:task-deleted');
    }
    expect(await countTasks(user.id)).toBe(0);
    expect((await client.get(`/api/v1/tasks/${id}`, { token: user.token })).status).toBe(404);
  });

  it("when the id is one of another user's tasks, then the answer is exactly as if it were free: a task of one's own", async () => {
    const alice = await client.register();
    const bob = await client.register();
    const id = randomUUID();
    const alices = await post(alice.token, { id, title: 'Alice' });
    const free = await post(bob.token, { id: randomUUID(), title: 'Bob' });

    const bobs = await post(bob.token, { id, title: 'Bob' });

    expect(bobs.status).toBe(free.status);
    expect(Object.keys(bobs.body).sort()).toEqual(Object.keys(free.body).sort());
    expect(bobs.body).toMatchObject({ id, title: 'Bob', version: 1 });
    expect(bobs.headers.get('idempotent-replayed')).toBeNull();
    expect((await client.get(`/api/v1/tasks/${id}`, { token: alice.token })).body).toEqual(
      alices.body,
    );
    // And one deleting theirs does not touch the other's, nor block its id.
    await client.delete(`/api/v1/tasks/${id}`, { token: alice.token });
    expect((await client.get(`/api/v1/tasks/${id}`, { token: bob.token })).body).toEqual(bobs.body);
    const rows = await app().db.query<{ user_id: string; title: string }>(
      'SELECT user_id, title FROM tasks WHERE id = $1',
      [id],
    );
    expect(rows.rows).toEqual([{ user_id: bob.id, title: 'Bob' }]);
  });

  it("when another user's id was deleted, then it does not block this user's id either", async () => {
    const alice = await client.register();
    const bob = await client.register();
    const id = randomUUID();
    await post(alice.token, { id, title: 'A' });
    await client.delete(`/api/v1/tasks/${id}`, { token: alice.token });
    expect((await post(bob.token, { id, title: 'B' })).status).toBe(201);
  });

  it('when 20 retries of one create race, then one task exists and every answer is the task', async () => {
    const user = await client.register();
    const body = { id: randomUUID(), title: 'once' };
    const results = await Promise.all(Array.from({ length: 20 }, () => post(user.token, body)));
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(201));
    expect(results.filter((r) => r.headers.get('idempotent-replayed') === null)).toHaveLength(1);
    expect(new Set(results.map((r) => JSON.stringify(r.body))).size).toBe(1);
    expect(await countTasks(user.id)).toBe(1);
  });

  it('when a retry meets a deletion of its task still in progress, then it waits for it and answers task-deleted, without a deadlock', async () => {
    // A delete of several rows deletes X, then waits for Y; its trigger (the change counter) runs
    // only at the end. A create of X that took the counter first and then waited for X's
    // deletion would close a cycle. Ids chosen so that X is deleted before Y.
    const user = await client.register();
    const x = { id: '00000000-0000-4000-8000-000000000001', title: 'X' };
    const y = { id: 'ffffffff-ffff-4fff-bfff-ffffffffffff', title: 'Y' };
    for (const body of [x, y]) expect((await post(user.token, body)).status).toBe(201);
    const holder = holdTransaction(app().db, (tx) =>
      tx.query('SELECT 1 FROM tasks WHERE user_id = $1 AND id = $2 FOR UPDATE', [user.id, y.id]),
    );
    await holder.held;
    const deletion = app()
      .db.query('DELETE FROM tasks WHERE user_id = $1 AND id = ANY ($2::uuid[])', [
        user.id,
        [x.id, y.id],
      ])
      .then(
        (r) => r.rowCount,
        (err: unknown) => (err as { code?: string }).code,
      );
    await lockWaiters(app().db, 1, 'the deletion to wait for Y');
    const retry = post(user.token, x);
    await lockWaiters(app().db, 2, 'the retry to wait too');
    holder.release();
    expect(await holder.outcome).toBe('committed');
    expect(await deletion).toBe(2);
    const res = await retry;
    expect(res.status).toBe(409);
    expect(res.body.type).toBe('urn:tasks-backend:problem:task-deleted');
  });

  it('when an id is given with an Idempotency-Key, then both hold: the key replays its first answer', async () => {
    const user = await client.register();
    const body = { id: randomUUID(), title: 'both' };
    const headers = { 'idempotency-key': 'both-1' };
    const first = await post(user.token, body, headers);
    await client.patch(`/api/v1/tasks/${body.id}`, { token: user.token, body: { title: 'later' } });
    const again = await post(user.token, body, headers);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect((await post(user.token, { ...body, title: 'x' }, headers)).status).toBe(422);
  });

  it.each([
    ['not a UUID', 'abc'],
    ['a number', 7],
    ['null', null],
  ])('when the id is %s, then 400 naming id and nothing is stored', async (_case, id) => {
    const user = await client.register();
    const res = await post(user.token, { id, title: 'x' });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { name: string }) => e.name)).toEqual(['id']);
    expect(await countTasks(user.id)).toBe(0);
  });

  it('when an idempotency record was stored by release 0.1.0 (no completedAt), then its replay still has every field', async () => {
    const user = await client.register();
    const headers = { 'idempotency-key': 'from-0.1.0' };
    const first = await post(user.token, { title: 'done', completed: true }, headers);
    const { completedAt: _dropped, ...asStoredBy010 } = first.body;
    await app().db.query('UPDATE idempotency_keys SET body = $2 WHERE user_id = $1', [
      user.id,
      JSON.stringify(asStoredBy010),
    ]);
    const replay = await post(user.token, { title: 'done', completed: true }, headers);
    expect(replay.status).toBe(201);
    expect(replay.body).toEqual({ ...asStoredBy010, completedAt: first.body.createdAt });
  });
});
