import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, type Api } from './support/api.ts';
import { startOwnPostgres } from './support/own-postgres.ts';
import { startTestApp, type TestApp } from './support/test-app.ts';
import { waitFor } from './support/wait.ts';

// A PostgreSQL of this file's own: the outage test stops it.
let pg: Awaited<ReturnType<typeof startOwnPostgres>>;
let app: TestApp;
let client: Api;

beforeAll(async () => {
  pg = await startOwnPostgres();
  app = await startTestApp({ DATABASE_URL: pg.url, DATABASE_CONNECT_TIMEOUT_MS: '1000' });
  client = api(app.baseUrl);
});
afterAll(async () => {
  await app.close();
  await pg.dispose();
});

/** Another app of its own, for a test that changes where it is in its life. */
async function withApp(
  options: Parameters<typeof startTestApp>[1],
  body: (other: TestApp, otherClient: Api) => Promise<void>,
  env: Record<string, string> = { DATABASE_URL: pg.url },
): Promise<void> {
  const other = await startTestApp(env, options);
  try {
    await body(other, api(other.baseUrl));
  } finally {
    await other.close();
  }
}

const status = (res: { status: number }) => res.status;

describe('health', () => {
  it('when the database answers, then live, ready and health are 200', async () => {
    expect((await client.get('/api/health/live')).status).toBe(200);
    const ready = await client.get('/api/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({
      status: 'ok',
      version: 'test',
      database: 'ok',
      migrations: 'ok',
      shutdown: 'no',
    });
    expect((await client.get('/api/health')).status).toBe(200);
  });

  it('when migrations are not applied yet, then ready is 503 and says so', () =>
    withApp(
      { unmigrated: true },
      async (_other, otherClient) => {
        const res = await otherClient.get('/api/health/ready');
        expect(res.status).toBe(503);
        expect(res.body.migrations).toBe('pending');
        // The API answers a 503 to retry, not a 500 from a table that does not exist yet.
        const login = await otherClient.post('/api/v1/auth/login', {
          body: { email: 'a@example.com', password: 'long enough password' },
        });
        expect(login.status).toBe(503);
        expect(login.headers.get('retry-after')).toBe('1');
      },
      {}, // a fresh, empty database
    ));

  it('when the database stops, then ready turns 503, live stays 200, requests get a fast 503; when it is back, ready recovers without a restart', async () => {
    const { token } = await client.register();
    expect(
      (await client.post('/api/v1/tasks', { token, body: { title: 'before the outage' } })).status,
    ).toBe(201);

    await pg.pause();
    try {
      await waitFor(
        'ready 503',
        async () => status(await client.get('/api/health/ready')) === 503,
        {
          timeoutMs: 5000,
        },
      );
      const ready = await client.get('/api/health');
      expect(ready.status).toBe(503);
      expect(ready.body.database).toBe('unavailable');
      expect((await client.get('/api/health/live')).status).toBe(200);

      const started = Date.now();
      const res = await client.get('/api/v1/tasks', { token });
      const elapsed = Date.now() - started;
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.headers.get('retry-after')).toBe('1');
      // Bounded by the connect timeout (1 s here), with room for a busy machine.
      expect(elapsed).toBeLessThan(3000);

      const write = await client.post('/api/v1/tasks', {
        token,
        body: { title: 'during the outage' },
      });
      expect(write.status).toBe(503);
    } finally {
      await pg.resume();
    }

    await waitFor('ready 200', async () => status(await client.get('/api/health/ready')) === 200, {
      timeoutMs: 10_000,
    });
    const list = await client.get('/api/v1/tasks', { token });
    expect(list.status).toBe(200);
    expect(list.body.items.map((t: { title: string }) => t.title)).toEqual(['before the outage']);
    // No pool client leaked by the failed requests.
    expect(app.db.poolStats().waiting).toBe(0);
  });

  it('when shutdown begins, then ready is 503 at once while live stays 200', () =>
    withApp({}, async (other, otherClient) => {
      expect(status(await otherClient.get('/api/health/ready'))).toBe(200);
      other.lifecycle.beginShutdown();
      const res = await otherClient.get('/api/health/ready');
      expect(res.status).toBe(503);
      expect(res.body.shutdown).toBe('in progress');
      expect(res.headers.get('connection')).toBe('close');
      expect((await otherClient.get('/api/health/live')).status).toBe(200);
    }));
});

describe('readiness under load', () => {
  it('when every pool connection is busy with slow queries, then readiness still answers 200 (a busy replica is not a dead one)', async () => {
    const busy = await startTestApp({
      DATABASE_URL: pg.url,
      DATABASE_POOL_MAX: '2',
      ENABLE_TEST_ROUTES: 'true',
    });
    try {
      const busyClient = api(busy.baseUrl);
      const slow = [1, 2, 3].map(() => fetch(`${busy.baseUrl}/api/_test/slow-query?ms=1500`));
      await waitFor('the pool to queue', () => busy.db.poolStats().waiting > 0, {
        timeoutMs: 2000,
      });
      const ready = await busyClient.get('/api/health/ready');
      expect(ready.status).toBe(200);
      expect(busy.db.poolStats().idle).toBe(0);
      await Promise.all(slow);
    } finally {
      await busy.close();
    }
  });
});
