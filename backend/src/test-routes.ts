import { Router } from 'express';
import { z } from 'zod';
import type { Db } from './db.ts';
import { parse } from './validation.ts';

/**
 * Routes for tests of shutdown, timeouts and monitoring. Mounted only with ENABLE_TEST_ROUTES=true,
 * which no deployment in this repository sets.
 */
export function testRouter(db: Db): Router {
  const router = Router();
  const ms = z.strictObject({ ms: z.coerce.number<string>().int().min(0).max(60_000) });

  /** Answers after `ms` milliseconds: an in-flight request for drain tests. */
  router.get('/api/_test/slow', async (req, res) => {
    const { ms: delay } = parse(ms, req.query, 'query');
    await new Promise((resolve) => setTimeout(resolve, delay));
    res.json({ sleptMs: delay });
  });

  /** Holds a query in PostgreSQL for `ms` milliseconds (past statement_timeout, it is cancelled). */
  router.get('/api/_test/slow-query', async (req, res) => {
    const { ms: delay } = parse(ms, req.query, 'query');
    await db.query('SELECT pg_sleep($1)', [delay / 1000]);
    res.json({ sleptMs: delay });
  });

  /** A genuine 500, so that error metrics and alerts can be exercised. */
  router.get('/api/_test/error', () => {
    throw new Error('deliberate test failure');
  });

  return router;
}
