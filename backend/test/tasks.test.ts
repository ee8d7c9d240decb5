import { beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../src/auth/tokens.ts';
import { insert } from '../src/tasks/repository.ts';
import type { Task } from '../src/tasks/schemas.ts';
import { useTestApp } from './support/test-app.ts';

const { client, app } = useTestApp();
let token: string;

beforeAll(async () => {
  ({ token } = await client.register());
});

const create = async (body: Record<string, unknown>, as = token) => {
  const res = await client.post('/api/v1/tasks', { token: as, body });
  expect(res.status).toBe(201);
  return res.body;
};

describe('creating and reading tasks', () => {
  it('when a task is created, then 201 with Location, ETag and defaults; reading it back returns the same', async () => {
    const res = await client.post('/api/v1/tasks', { token, body: { title: 'Buy milk' } });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`/api/v1/tasks/${res.body.id}`);
    expect(res.headers.get('etag')).toBe('"1"');
    expect(res.body).toMatchObject({
      title: 'Buy milk',
      notes: '',
      completed: false,
      dueAt: null,
      version: 1,
    });
    expect(res.body.createdAt).toBe(res.body.updatedAt);

    const read = await client.get(res.headers.get('location')!, { token });
    expect(read.status).toBe(200);
    expect(read.body).toEqual(res.body);
    // And the stored row matches.
    const row = await app().db.query(
      'SELECT title, notes, completed, version FROM tasks WHERE id = $1',
      [res.body.id],
    );
    expect(row.rows[0]).toEqual({ title: 'Buy milk', notes: '', completed: false, version: 1 });
  });

  it("when many tasks are created, then each one's updatedAt equals its createdAt exactly", async () => {
    // A millisecond boundary between two clock readings is rare per insert, so insert many.
    const { token } = await client.register();
    const caller = { tokenHash: hashToken(token), ttlSeconds: 3600, maxSeconds: 86_400 };
    const tasks: Task[] = [];
    for (let batch = 0; batch < 20; batch++) {
      tasks.push(
        ...(await Promise.all(
          Array.from(
            { length: 100 },
            async () => (await insert(app().db, caller, { title: 'tick' })).task,
          ),
        )),
      );
    }
    expect(tasks.filter((t) => t.createdAt !== t.updatedAt)).toEqual([]);
  });

  it('normalises dueAt to UTC', async () => {
    const task = await create({
      title: 'Call',
      dueAt: '2027-03-01T09:30:00+02:00',
      notes: 'n',
      completed: true,
    });
    expect(task.dueAt).toBe('2027-03-01T07:30:00.000Z');
    expect(task.completed).toBe(true);
  });

  it('when If-None-Match carries the current ETag, then 304 without a body', async () => {
    const task = await create({ title: 'Cache me' });
    const res = await client.get(`/api/v1/tasks/${task.id}`, {
      token,
      headers: { 'if-none-match': '"1"' },
    });
    expect(res.status).toBe(304);
    expect(res.text).toBe('');
    const weak = await client.get(`/api/v1/tasks/${task.id}`, {
      token,
      headers: { 'if-none-match': 'W/"1"' },
    });
    expect(weak.status).toBe(304);
    const stale = await client.get(`/api/v1/tasks/${task.id}`, {
      token,
      headers: { 'if-none-match': '"0"' },
    });
    expect(stale.status).toBe(200);
  });

  it.each([
    ['an empty title', { title: '' }, ['title']],
    ['a title of 201 characters', { title: 'x'.repeat(201) }, ['title']],
    ['notes over 10,000 characters', { title: 't', notes: 'x'.repeat(10_001) }, ['notes']],
    ['a NUL character', { title: 'a\u0000b' }, ['title']],
    ['wrong types', { title: 7, completed: 'yes', dueAt: 12 }, ['completed', 'dueAt', 'title']],
    ['a date that is not RFC 3339', { title: 't', dueAt: 'tomorrow' }, ['dueAt']],
    ['year 0, which PostgreSQL refuses', { title: 't', dueAt: '0000-01-01T00:00:00Z' }, ['dueAt']],
    [
      'an instant before year 1 in UTC',
      { title: 't', dueAt: '0001-01-01T00:00:00+01:00' },
      ['dueAt'],
    ],
    ['a lone UTF-16 surrogate', { title: 'a\ud800b' }, ['title']],
    ['a title of spaces only', { title: '  \t ' }, ['title']],
    ['a title of a zero-width space only', { title: '\u200b' }, ['title']],
    ['a title of a no-break space and a BOM', { title: '\u00a0\ufeff' }, ['title']],
    ['unknown fields', { title: 't', priority: 1, owner: 'x' }, ['owner', 'priority']],
    ['an array body', [], ['(root)']],
  ])(
    'when the body has %s, then 400 listing each field and nothing is stored',
    async (_case, body, fields) => {
      const before = await app().db.query('SELECT count(*)::int AS n FROM tasks');
      const res = await client.post('/api/v1/tasks', { token, body });
      expect(res.status).toBe(400);
      expect(res.body.errors.map((e: { name: string }) => e.name).sort()).toEqual(fields);
      const after = await app().db.query('SELECT count(*)::int AS n FROM tasks');
      expect(after.rows[0]).toEqual(before.rows[0]);
    },
  );

  it('when the id is not a UUID, then 400 naming the id', async () => {
    const res = await client.get('/api/v1/tasks/not-a-uuid', { token });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([{ name: 'id', in: 'path', reason: expect.any(String) }]);
  });

  it('when there is no token, then 401', async () => {
    expect((await client.get('/api/v1/tasks')).status).toBe(401);
    expect((await client.post('/api/v1/tasks', { body: { title: 'x' } })).status).toBe(401);
  });
});

describe('ownership', () => {
  it("when another user's task is read, changed or deleted, then 404 exactly as for a missing task", async () => {
    const mine = await create({ title: 'private' });
    const other = await client.register();
    const missing = '00000000-0000-4000-8000-000000000000';
    for (const [method, body] of [['GET'], ['PATCH', { title: 'stolen' }], ['DELETE']] as const) {
      const theirs = await client.request(method, `/api/v1/tasks/${mine.id}`, {
        token: other.token,
        ...(body ? { body } : {}),
      });
      const absent = await client.request(method, `/api/v1/tasks/${missing}`, {
        token: other.token,
        ...(body ? { body } : {}),
      });
      expect(theirs.status).toBe(404);
      expect(theirs.text).toBe(absent.text);
    }
    const list = await client.get('/api/v1/tasks', { token: other.token });
    expect(list.body.items).toEqual([]);
    expect((await client.get(`/api/v1/tasks/${mine.id}`, { token })).body.title).toBe('private');
  });
});

describe('updating and deleting', () => {
  it('when PATCH changes some fields, then only those change and the version grows', async () => {
    const task = await create({ title: 'Old', notes: 'keep me', dueAt: '2027-01-01T00:00:00Z' });
    const res = await client.patch(`/api/v1/tasks/${task.id}`, {
      token,
      body: { title: 'New', dueAt: null },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe('"2"');
    expect(res.body).toMatchObject({
      title: 'New',
      notes: 'keep me',
      dueAt: null,
      completed: false,
      version: 2,
    });
    expect(Date.parse(res.body.updatedAt)).toBeGreaterThanOrEqual(Date.parse(task.updatedAt));
  });

  it('when If-Match is the current version, then 200; when stale, then 412 and nothing changes', async () => {
    const task = await create({ title: 'v1' });
    const ok = await client.patch(`/api/v1/tasks/${task.id}`, {
      token,
      headers: { 'if-match': '"1"' },
      body: { completed: true },
    });
    expect(ok.status).toBe(200);
    const stale = await client.patch(`/api/v1/tasks/${task.id}`, {
      token,
      headers: { 'if-match': '"1"' },
      body: { title: 'lost?' },
    });
    expect(stale.status).toBe(412);
    const weak = await client.patch(`/api/v1/tasks/${task.id}`, {
      token,
      headers: { 'if-match': 'W/"2"' },
      body: { title: 'weak' },
    });
    expect(weak.status).toBe(412);
    const garbage = await client.patch(`/api/v1/tasks/${task.id}`, {
      token,
      headers: { 'if-match': '"99999999999999"' },
      body: { title: 'x' },
    });
    expect(garbage.status).toBe(412);
    const read = await client.get(`/api/v1/tasks/${task.id}`, { token });
    expect(read.body).toMatchObject({ title: 'v1', completed: true, version: 2 });
  });

  it('when If-Match lists several tags, then any one matching the current version lets the change through', async () => {
    const task = await create({ title: 'v1' });
    const res = await client.patch(`/api/v1/tasks/${task.id}`, {
      token,
      headers: { 'if-match': '"7", W/"1", "1"' },
      body: { title: 'v2' },
    });
    expect(res.status).toBe(200);
    expect(res.body.version).toBe(2);
  });

  it('when PATCH has no fields, then 400', async () => {
    const task = await create({ title: 'x' });
    const res = await client.patch(`/api/v1/tasks/${task.id}`, { token, body: {} });
    expect(res.status).toBe(400);
  });

  it('when DELETE carries an If-Match that is stale, then 412 and the task stays; a current one deletes it', async () => {
    const task = await create({ title: 'guarded' });
    await client.patch(`/api/v1/tasks/${task.id}`, { token, body: { title: 'changed' } });
    const stale = await client.delete(`/api/v1/tasks/${task.id}`, {
      token,
      headers: { 'if-match': '"1"' },
    });
    expect(stale.status).toBe(412);
    expect((await client.get(`/api/v1/tasks/${task.id}`, { token })).status).toBe(200);
    const current = await client.delete(`/api/v1/tasks/${task.id}`, {
      token,
      headers: { 'if-match': '"2"' },
    });
    expect(current.status).toBe(204);
    expect((await client.get(`/api/v1/tasks/${task.id}`, { token })).status).toBe(404);
  });

  it('when a title has a visible character among spaces, then it is kept exactly as sent', async () => {
    expect((await create({ title: ' \u200b x ' })).title).toBe(' \u200b x ');
  });

  it('when a task is deleted, then 204 and afterwards 404', async () => {
    const task = await create({ title: 'bye' });
    expect((await client.delete(`/api/v1/tasks/${task.id}`, { token })).status).toBe(204);
    expect((await client.get(`/api/v1/tasks/${task.id}`, { token })).status).toBe(404);
    expect((await client.delete(`/api/v1/tasks/${task.id}`, { token })).status).toBe(404);
  });
});

describe('listing', () => {
  it('when pages are read while new tasks are inserted, then every task appears exactly once, newest first', async () => {
    const user = await client.register();
    const created: string[] = [];
    for (let i = 0; i < 7; i++) created.push((await create({ title: `task ${i}` }, user.token)).id);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor ? `?limit=3&cursor=${cursor}` : '?limit=3';
      const res = await client.get(`/api/v1/tasks${query}`, { token: user.token });
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(3);
      seen.push(...res.body.items.map((t: { id: string }) => t.id));
      cursor = res.body.nextCursor;
      // Inserting between pages must not shift what the next page returns.
      await create({ title: `inserted after page ${pages++}` }, user.token);
    } while (cursor);

    // Newest first; rows created within the same millisecond are ordered by id, as the API promises.
    const { rows } = await app().db.query<{ id: string }>(
      'SELECT id FROM tasks WHERE id = ANY($1) ORDER BY created_at DESC, id DESC',
      [created],
    );
    expect(seen).toEqual(rows.map((r) => r.id));
    expect(pages).toBe(3);
  });

  it('filters by completed and defaults to 50 per page', async () => {
    const user = await client.register();
    for (let i = 0; i < 52; i++)
      await create({ title: `t${i}`, completed: i % 2 === 0 }, user.token);
    const all = await client.get('/api/v1/tasks', { token: user.token });
    expect(all.body.items).toHaveLength(50);
    expect(all.body.nextCursor).toEqual(expect.any(String));
    const done = await client.get('/api/v1/tasks?completed=true&limit=100', { token: user.token });
    expect(done.body.items).toHaveLength(26);
    expect(done.body.items.every((t: { completed: boolean }) => t.completed)).toBe(true);
    expect(done.body.nextCursor).toBeNull();
  });

  it.each([
    ['limit=0', ['limit']],
    ['limit=101', ['limit']],
    ['limit=abc', ['limit']],
    // The document says integer: no hexadecimal, exponent, decimal point or padding.
    ['limit=0x10', ['limit']],
    ['limit=1e1', ['limit']],
    ['limit=10.0', ['limit']],
    ['limit=%2010%20', ['limit']],
    ['completed=maybe', ['completed']],
    ['cursor=garbage', ['cursor']],
    [
      `cursor=${Buffer.from(JSON.stringify({ t: '0000-01-01T00:00:00Z', i: '00000000-0000-4000-8000-000000000000' })).toString('base64url')}`,
      ['cursor'],
    ],
    ['sort=title', ['sort']],
    ['limit=1&limit=2', ['limit']],
  ])('when the query is %s, then 400 naming it', async (query, fields) => {
    const res = await client.get(`/api/v1/tasks?${query}`, { token });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { name: string }) => e.name)).toEqual(fields);
  });
});

describe('idempotent creation', () => {
  it('when the same key and body are sent again, then the first response is replayed and nothing new is created', async () => {
    const user = await client.register();
    const headers = { 'idempotency-key': 'create-milk-1' };
    const first = await client.post('/api/v1/tasks', {
      token: user.token,
      headers,
      body: { title: 'Milk', notes: 'oat' },
    });
    const again = await client.post('/api/v1/tasks', {
      token: user.token,
      headers,
      body: { notes: 'oat', title: 'Milk' },
    });
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('location')).toBe(first.headers.get('location'));
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const count = await app().db.query('SELECT count(*)::int AS n FROM tasks WHERE user_id = $1', [
      user.id,
    ]);
    expect(count.rows[0]).toEqual({ n: 1 });
  });

  it('when the same instant is written another way, then it is the same request and is replayed', async () => {
    const user = await client.register();
    const headers = { 'idempotency-key': 'same-instant' };
    const first = await client.post('/api/v1/tasks', {
      token: user.token,
      headers,
      body: { title: 'A', dueAt: '2030-01-01T00:00:00Z' },
    });
    const again = await client.post('/api/v1/tasks', {
      token: user.token,
      headers,
      body: { title: 'A', dueAt: '2030-01-01T01:00:00.000+01:00' },
    });
    expect(again.status).toBe(201);
    expect(again.body.id).toBe(first.body.id);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
  });

  it('when the same key comes with another body, then 422 and nothing is created', async () => {
    const user = await client.register();
    const headers = { 'idempotency-key': 'k-2' };
    await client.post('/api/v1/tasks', { token: user.token, headers, body: { title: 'A' } });
    const res = await client.post('/api/v1/tasks', {
      token: user.token,
      headers,
      body: { title: 'B' },
    });
    expect(res.status).toBe(422);
    const count = await app().db.query('SELECT count(*)::int AS n FROM tasks WHERE user_id = $1', [
      user.id,
    ]);
    expect(count.rows[0]).toEqual({ n: 1 });
  });

  it('keys belong to one user: another user with the same key creates their own task', async () => {
    const a = await client.register();
    const b = await client.register();
    const headers = { 'idempotency-key': 'shared-key' };
    const ra = await client.post('/api/v1/tasks', {
      token: a.token,
      headers,
      body: { title: 'A' },
    });
    const rb = await client.post('/api/v1/tasks', {
      token: b.token,
      headers,
      body: { title: 'A' },
    });
    expect(rb.status).toBe(201);
    expect(rb.body.id).not.toBe(ra.body.id);
  });

  it('when the key is older than 24 hours, then it is a new request', async () => {
    const user = await client.register();
    const headers = { 'idempotency-key': 'old-key' };
    const first = await client.post('/api/v1/tasks', {
      token: user.token,
      headers,
      body: { title: 'A' },
    });
    await app().db.query(
      `UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE user_id = $1`,
      [user.id],
    );
    const second = await client.post('/api/v1/tasks', {
      token: user.token,
      headers,
      body: { title: 'B' },
    });
    expect(second.status).toBe(201);
    expect(second.body.id).not.toBe(first.body.id);
    expect(second.headers.get('idempotent-replayed')).toBeNull();
  });

  it('when the key is not 1-255 visible ASCII characters, then 400', async () => {
    const res = await client.post('/api/v1/tasks', {
      token,
      headers: { 'idempotency-key': 'x'.repeat(256) },
      body: { title: 'A' },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].name).toBe('Idempotency-Key');
  });
});
