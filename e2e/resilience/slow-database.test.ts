import pg from 'pg';
import { describe, expect, it } from 'vitest';
import {
  createTask,
  poolSettles,
  registerUser,
  useBackendOnOwnPostgres,
} from './support/backend.ts';
import { report, startLoad, tally } from './support/load.ts';

const statementTimeoutMs = 1000;
const connectTimeoutMs = 2000;
const poolMax = 4;

const setup = useBackendOnOwnPostgres('slow-db', {
  DATABASE_POOL_MAX: String(poolMax),
  DATABASE_STATEMENT_TIMEOUT_MS: String(statementTimeoutMs),
  DATABASE_CONNECT_TIMEOUT_MS: String(connectTimeoutMs),
  ENABLE_TEST_ROUTES: 'true',
});

async function timed(url: string) {
  const started = Date.now();
  const res = await fetch(url);
  const body = (await res.json()) as { type?: string; status?: number };
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    body,
    ms: Date.now() - started,
  };
}

/** Queries of ours still running in PostgreSQL (the test's own connection excluded). */
async function sleepingQueries(): Promise<number> {
  const client = new pg.Client({ connectionString: setup.db.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity
       WHERE query LIKE '%pg_sleep%' AND state = 'active' AND pid <> pg_backend_pid()`,
    );
    return Number(rows[0]!.n);
  } finally {
    await client.end();
  }
}

describe('slow database', () => {
  it('when a query runs past statement_timeout, then the request gets a 503 problem at the timeout', async () => {
    const { backend } = setup;
    const quick = await timed(`${backend.baseUrl}/api/_test/slow-query?ms=200`);
    expect(quick.status).toBe(200);

    const slow = await timed(`${backend.baseUrl}/api/_test/slow-query?ms=5000`);
    report('slow query', { status: slow.status, type: slow.body.type, ms: slow.ms });
    expect([503, 504]).toContain(slow.status);
    expect(slow.type).toMatch(/^application\/problem\+json/);
    expect(slow.body.type).toBe('urn:tasks-backend:problem:database-timeout');
    expect(slow.ms).toBeGreaterThanOrEqual(statementTimeoutMs - 50);
    expect(slow.ms).toBeLessThan(statementTimeoutMs + 1500);
  });

  it('when slow queries fill the pool three times over, then every request is answered in bounded time, no query is left running and the pool recovers', async () => {
    const { backend } = setup;
    const token = await registerUser(backend.baseUrl);
    const taskId = await createTask(backend.baseUrl, token, 'read while the pool is full');
    const auth = { authorization: `Bearer ${token}` };

    // 3 × pool size slow queries at once, plus ordinary reads queuing behind them.
    const slow = startLoad({
      baseUrl: backend.baseUrl,
      concurrency: 3 * poolMax,
      maxDurationMs: 60_000,
      maxRequests: 3 * poolMax,
      next: () => ({ kind: 'slow-query', method: 'GET', path: '/api/_test/slow-query?ms=5000' }),
    });
    const reads = startLoad({
      baseUrl: backend.baseUrl,
      concurrency: 4,
      maxDurationMs: 60_000,
      maxRequests: 40,
      next: () => ({ kind: 'get', method: 'GET', path: `/api/v1/tasks/${taskId}`, headers: auth }),
    });
    const outcomes = [...(await slow.done), ...(await reads.done)];

    const recoveredMs = await poolSettles(backend);
    const afterAuth = await fetch(`${backend.baseUrl}/api/v1/tasks/${taskId}`, { headers: auth });
    const leftRunning = await sleepingQueries();
    const bound = statementTimeoutMs + connectTimeoutMs + 1000;

    report('slow database, pool full', {
      requests: outcomes.length,
      byOutcome: tally(outcomes),
      maxMs: Math.max(...outcomes.map((o) => o.ms)).toFixed(0),
      boundMs: bound,
      poolIdleAfterMs: recoveredMs,
      queriesLeftRunning: leftRunning,
      firstRequestAfter: afterAuth.status,
    });
    // Slow queries end at the statement timeout (or wait for a connection and give up): 503.
    for (const o of outcomes.filter((o) => o.kind === 'slow-query')) {
      expect(o.status).toBe(503);
      expect(o.contentType).toMatch(/^application\/problem\+json/);
    }
    // Reads either got through or got a 503; nothing hung or failed otherwise.
    expect(outcomes.filter((o) => o.kind === 'get' && ![200, 503].includes(o.status))).toEqual([]);
    expect(Math.max(...outcomes.map((o) => o.ms))).toBeLessThan(bound);
    expect(leftRunning).toBe(0);
    expect(afterAuth.status).toBe(200);
  });
});
