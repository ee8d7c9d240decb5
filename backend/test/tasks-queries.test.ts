import { describe, expect, it } from 'vitest';
import type { Queryable } from '../src/db.ts';
import { listQuery, selectChanges, type ListOptions } from '../src/tasks/repository.ts';
import type { Task } from '../src/tasks/schemas.ts';
import { useTestApp } from './support/test-app.ts';

const { client, app } = useTestApp();

const create = async (token: string, body: Record<string, unknown>): Promise<Task> => {
  const res = await client.post('/api/v1/tasks', { token, body });
  expect(res.status).toBe(201);
  return res.body;
};

/** Every page of a listing, following nextCursor; returns the ids in order. */
async function walk(token: string, query: string, limit: number): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const res: {
      status: number;
      text: string;
      body: { items: Task[]; nextCursor: string | null };
    } = await client.get(
      `/api/v1/tasks?${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`,
      { token },
    );
    expect(res.status, res.text).toBe(200);
    expect(res.body.items.length).toBeLessThanOrEqual(limit);
    ids.push(...res.body.items.map((t) => t.id));
    cursor = res.body.nextCursor;
  } while (cursor);
  return ids;
}

describe('completedAt', () => {
  it('when a task is completed, then completedAt is its updatedAt; uncompleted, null; completed again, a new one', async () => {
    const { token } = await client.register();
    const task = await create(token, { title: 'x' });
    expect(task.completedAt).toBeNull();
    const done = await client.patch(`/api/v1/tasks/${task.id}`, {
      token,
      body: { completed: true },
    });
    expect(done.body.completedAt).toBe(done.body.updatedAt);
    const renamed = await client.patch(`/api/v1/tasks/${task.id}`, { token, body: { title: 'y' } });
    expect(renamed.body.completedAt).toBe(done.body.completedAt);
    const again = await client.patch(`/api/v1/tasks/${task.id}`, {
      token,
      body: { completed: true },
    });
    expect(again.body.completedAt).toBe(done.body.completedAt); // already completed: unchanged
    const undone = await client.patch(`/api/v1/tasks/${task.id}`, {
      token,
      body: { completed: false },
    });
    expect(undone.body.completedAt).toBeNull();
    const redone = await client.patch(`/api/v1/tasks/${task.id}`, {
      token,
      body: { completed: true },
    });
    expect(redone.body.completedAt).toBe(redone.body.updatedAt);
    const row = await app().db.query<{ completed_at: Date }>(
      'SELECT completed_at FROM tasks WHERE id = $1',
      [task.id],
    );
    expect(row.rows[0]!.completed_at.toISOString()).toBe(redone.body.completedAt);
  });

  it('when a task is created completed, then completedAt is its createdAt', async () => {
    const { token } = await client.register();
    const task = await create(token, { title: 'done already', completed: true });
    expect(task.completedAt).toBe(task.createdAt);
  });

  it('when a client sends completedAt, then 400: the server sets it', async () => {
    const { token } = await client.register();
    const res = await client.post('/api/v1/tasks', {
      token,
      body: { title: 'x', completedAt: '2030-01-01T00:00:00Z' },
    });
    expect(res.status).toBe(400);
  });
});

describe('sorting and filtering', () => {
  const dueAts = [
    '2030-01-03T00:00:00.000Z',
    null,
    '2030-01-01T00:00:00.000Z',
    '2030-01-02T00:00:00.000Z',
    null,
    '2030-01-01T00:00:00.000Z', // a tie: ordered by id
    null,
    '2029-12-31T00:00:00.000Z',
  ];

  async function seeded() {
    const user = await client.register();
    const tasks: Task[] = [];
    for (const [i, dueAt] of dueAts.entries()) {
      tasks.push(await create(user.token, { title: `t${i}`, dueAt, completed: i % 3 === 0 }));
    }
    // Touch some, so that updatedAt order differs from createdAt order.
    for (const task of [tasks[5]!, tasks[0]!, tasks[6]!]) {
      await client.patch(`/api/v1/tasks/${task.id}`, { token: user.token, body: { notes: 'x' } });
    }
    return user;
  }

  const expected = async (
    userId: string,
    orderBy: string,
    where = 'true',
    params: unknown[] = [],
  ) =>
    (
      await app().db.query<{ id: string }>(
        `SELECT id FROM tasks WHERE user_id = $1 AND ${where} ORDER BY ${orderBy}`,
        [userId, ...params],
      )
    ).rows.map((r) => r.id);

  it.each([
    ['createdAt', 'created_at DESC, id DESC'],
    ['updatedAt', 'updated_at DESC, id DESC'],
    ['dueAt', 'due_at ASC NULLS LAST, id ASC'],
  ])(
    'when sort=%s is paged at every page size, then each task appears once, in the documented order',
    async (sort, orderBy) => {
      const user = await seeded();
      const all = await expected(user.id, orderBy);
      expect(all).toHaveLength(dueAts.length);
      for (const limit of [1, 2, 3, 5, 8]) {
        expect(await walk(user.token, `sort=${sort}`, limit), `limit ${limit}`).toEqual(all);
      }
      // With the completed filter too.
      const done = await expected(user.id, orderBy, 'completed');
      expect(await walk(user.token, `sort=${sort}&completed=true`, 2)).toEqual(done);
    },
  );

  it('when dueAfter and dueBefore are given, then only tasks due in [dueAfter, dueBefore) come, undated ones never', async () => {
    const user = await seeded();
    const from = '2030-01-01T00:00:00Z';
    const to = '2030-01-03T00:00:00Z';
    const window = await expected(user.id, 'due_at, id', 'due_at >= $2 AND due_at < $3', [
      from,
      to,
    ]);
    expect(window).toHaveLength(3);
    expect(await walk(user.token, `sort=dueAt&dueAfter=${from}&dueBefore=${to}`, 2)).toEqual(
      window,
    );
    const before = await expected(user.id, 'created_at DESC, id DESC', 'due_at < $2', [from]);
    expect(await walk(user.token, `dueBefore=${from}`, 1)).toEqual(before);
    const after = await expected(user.id, 'updated_at DESC, id DESC', 'due_at >= $2', [to]);
    expect(await walk(user.token, `sort=updatedAt&dueAfter=${to}`, 1)).toEqual(after);
  });

  it.each([
    ['dueBefore=tomorrow', ['dueBefore']],
    ['dueAfter=2030-01-02T00:00:00Z&dueBefore=2030-01-01T00:00:00Z', ['dueBefore']],
    ['dueAfter=2030-01-01T00:00:00Z&dueBefore=2030-01-01T00:00:00Z', ['dueBefore']],
    ['sort=dueat', ['sort']],
  ])('when the query is %s, then 400 naming it', async (query, fields) => {
    const { token } = await client.register();
    const res = await client.get(`/api/v1/tasks?${query}`, { token });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { name: string }) => e.name)).toEqual(fields);
  });

  it('when a cursor of one sort is used with another, then 400 naming cursor', async () => {
    const user = await seeded();
    const first = await client.get('/api/v1/tasks?sort=dueAt&limit=1', { token: user.token });
    const res = await client.get(`/api/v1/tasks?sort=updatedAt&cursor=${first.body.nextCursor}`, {
      token: user.token,
    });
    expect(res.status).toBe(400);
    expect(res.body.errors[0]).toMatchObject({
      name: 'cursor',
      reason: 'was returned for sort=dueAt',
    });
  });

  it('when a cursor from release 0.1.0 (no sort in it) comes, then it pages by createdAt as it did', async () => {
    const user = await seeded();
    const all = await expected(user.id, 'created_at DESC, id DESC');
    const second = (await client.get(`/api/v1/tasks?limit=2`, { token: user.token })).body.items[1];
    const old = Buffer.from(JSON.stringify({ t: second.createdAt, i: second.id })).toString(
      'base64url',
    );
    const res = await client.get(`/api/v1/tasks?limit=100&cursor=${old}`, { token: user.token });
    expect(res.body.items.map((t: Task) => t.id)).toEqual(all.slice(2));
  });
});

describe('indexes', () => {
  // On these nearly empty tables the planner would rightly scan and sort; priced out of scans
  // and sorts, it walks an index in order whenever the query can be served that way. So a Sort
  // node means no index fits: these fail when an index of migration 0003 is dropped or a query
  // stops matching its index.
  const withoutShortcuts = async (tx: Queryable) => {
    for (const setting of ['enable_seqscan', 'enable_bitmapscan', 'enable_sort']) {
      await tx.query(`SET LOCAL ${setting} = off`);
    }
  };
  const plan = async (options: ListOptions): Promise<string> => {
    const caller = { tokenHash: Buffer.alloc(32), ttlSeconds: 3600, maxSeconds: 86_400 };
    const { text, params } = listQuery(caller, options);
    return app().db.withTransaction(async (tx) => {
      await withoutShortcuts(tx);
      const { rows } = await tx.query<{ 'QUERY PLAN': unknown }>(
        `EXPLAIN (FORMAT JSON) ${text}`,
        params,
      );
      return JSON.stringify(rows[0]!['QUERY PLAN']);
    });
  };
  const cursorAt = (value: string | null) => ({
    value,
    id: '00000000-0000-4000-8000-000000000000',
  });

  it.each([
    ['createdAt', 'tasks_user_created_idx', cursorAt('2030-01-01T00:00:00Z')],
    ['updatedAt', 'tasks_user_updated_idx', cursorAt('2030-01-01T00:00:00Z')],
    ['dueAt', 'tasks_user_due_idx', cursorAt('2030-01-01T00:00:00Z')],
    ['dueAt', 'tasks_user_due_idx', cursorAt(null)],
  ] as const)(
    'when listing by %s from a cursor, then %s is walked in order, with no sort step',
    async (sort, index, cursor) => {
      for (const after of [undefined, { sort, ...cursor }]) {
        const shown = await plan({ limit: 50, sort, after });
        expect(shown).toContain(`"Index Name":"${index}"`);
        expect(shown).not.toContain('"Node Type":"Sort"');
      }
    },
  );

  it('when syncing, then the change-order indexes of tasks and tombstones are walked, with no sort step', async () => {
    const { rows } = await app().db.withTransaction(async (tx) => {
      await withoutShortcuts(tx);
      return tx.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (FORMAT JSON) ${selectChanges}`, [
        Buffer.alloc(32),
        3600,
        86_400,
        5,
        '00000000-0000-4000-8000-000000000000',
        101,
        true,
      ]);
    });
    const shown = JSON.stringify(rows[0]!['QUERY PLAN']);
    expect(shown).toContain('"Index Name":"tasks_user_change_seq_idx"');
    expect(shown).toContain('"Index Name":"task_tombstones_user_change_seq_idx"');
    expect(shown).not.toContain('"Node Type":"Sort"');
  });
});
