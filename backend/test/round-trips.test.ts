import { describe, expect, it } from 'vitest';
import { useTestApp } from './support/test-app.ts';

/**
 * Database work per request (issue 15): an authenticated request checks its session in the
 * statement that does its work, so it makes one round trip; a write that needs a transaction
 * says how many it takes. Counted by the backend's own statement counter (every statement,
 * BEGIN and COMMIT included, is observed by db_query_duration_seconds).
 */

const { client, app } = useTestApp();

const statements = async (): Promise<number> => {
  const text = await (await fetch(app().metricsUrl)).text();
  return [...text.matchAll(/^db_query_duration_seconds_count\{outcome="\w+"\} (\d+)$/gm)].reduce(
    (sum, match) => sum + Number(match[1]),
    0,
  );
};

/** The statements one request made. */
async function counted(
  request: () => Promise<{ status: number }>,
  status: number,
): Promise<number> {
  const before = await statements();
  expect((await request()).status).toBe(status);
  return (await statements()) - before;
}

describe('round trips per request', () => {
  it('when an authenticated request reads or writes, then it makes exactly one statement, the session check included', async () => {
    const { token } = await client.register();
    const task = (await client.post('/api/v1/tasks', { token, body: { title: 'counted' } })).body;
    const id = task.id as string;
    const changes = await client.get('/api/v1/tasks/changes', { token });

    const perRequest = {
      'GET /tasks/{id}': await counted(() => client.get(`/api/v1/tasks/${id}`, { token }), 200),
      'GET /tasks': await counted(() => client.get('/api/v1/tasks?limit=20', { token }), 200),
      'GET /tasks?sort=dueAt': await counted(
        () => client.get('/api/v1/tasks?sort=dueAt', { token }),
        200,
      ),
      'POST /tasks': await counted(
        () => client.post('/api/v1/tasks', { token, body: { title: 'one more' } }),
        201,
      ),
      'POST /tasks with id': await counted(
        () =>
          client.post('/api/v1/tasks', {
            token,
            body: { id: crypto.randomUUID(), title: 'offline' },
          }),
        201,
      ),
      'PATCH /tasks/{id}': await counted(
        () => client.patch(`/api/v1/tasks/${id}`, { token, body: { completed: true } }),
        200,
      ),
      'PATCH /tasks/{id}, stale If-Match': await counted(
        () =>
          client.patch(`/api/v1/tasks/${id}`, {
            token,
            body: { title: 'x' },
            headers: { 'if-match': '"1"' },
          }),
        412,
      ),
      'GET /tasks/changes': await counted(
        () => client.get(`/api/v1/tasks/changes?since=${changes.body.next}`, { token }),
        200,
      ),
      'GET /me': await counted(() => client.get('/api/v1/me', { token }), 200),
      'GET /me/sessions': await counted(() => client.get('/api/v1/me/sessions', { token }), 200),
      'DELETE /tasks/{id}': await counted(
        () => client.delete(`/api/v1/tasks/${id}`, { token }),
        204,
      ),
      'GET /tasks/{id}, gone': await counted(
        () => client.get(`/api/v1/tasks/${id}`, { token }),
        404,
      ),
      'GET /tasks, revoked token': await counted(
        () => client.get('/api/v1/tasks', { token: 'x'.repeat(43) }),
        401,
      ),
    };
    expect(perRequest).toEqual(Object.fromEntries(Object.keys(perRequest).map((k) => [k, 1])));
  });

  it('when a create carries an Idempotency-Key, then it takes five: BEGIN, claim (with the session check), insert, store, COMMIT; a replay four', async () => {
    const { token } = await client.register();
    const create = () =>
      client.post('/api/v1/tasks', {
        token,
        body: { title: 'once' },
        headers: { 'idempotency-key': 'counted-key' },
      });
    expect(await counted(create, 201)).toBe(5);
    expect(await counted(create, 201)).toBe(4); // BEGIN, claim, the stored result, COMMIT
  });

  it('when a session is due to slide, then that request makes one more statement, once', async () => {
    const { token, id } = await client.register();
    await app().db.query(
      `UPDATE sessions SET last_used_at = now() - interval '2 hours' WHERE user_id = $1`,
      [id],
    );
    expect(await counted(() => client.get('/api/v1/me', { token }), 200)).toBe(2);
    expect(await counted(() => client.get('/api/v1/me', { token }), 200)).toBe(1);
  });
});
