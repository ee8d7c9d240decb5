import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { Db } from './db.ts';
import { routesFor } from './http/routes.ts';

/**
 * Routes for tests of shutdown, timeouts and monitoring. Mounted only with ENABLE_TEST_ROUTES=true,
 * which no deployment in this repository sets; not part of the API or its document.
 */

const route = routesFor<{ readonly db: Db }>();
const delay = z.strictObject({ ms: z.coerce.number<string>().int().min(0).max(60_000) });
const slept = z.object({ sleptMs: z.int() }).meta({ id: 'TestSlept' });

export const testRoutes = [
  route({
    method: 'get',
    path: '/api/_test/slow',
    operationId: 'testSlow',
    summary: 'Answers after `ms` milliseconds: an in-flight request for drain tests',
    tags: ['test'],
    database: false,
    query: delay,
    responses: { 200: { description: 'Slept', body: slept } },
    handler: async ({ query }) => {
      await sleep(query.ms);
      return { status: 200, body: { sleptMs: query.ms } };
    },
  }),
  route({
    method: 'get',
    path: '/api/_test/slow-query',
    operationId: 'testSlowQuery',
    summary: 'Holds a query for `ms` milliseconds (past statement_timeout, it is cancelled)',
    tags: ['test'],
    query: delay,
    responses: { 200: { description: 'Slept', body: slept } },
    handler: async ({ query }, { db }) => {
      await db.query('SELECT pg_sleep($1)', [query.ms / 1000]);
      return { status: 200, body: { sleptMs: query.ms } };
    },
  }),
  route({
    method: 'get',
    path: '/api/_test/error',
    operationId: 'testError',
    summary: 'A genuine 500, so that error metrics and alerts can be exercised',
    tags: ['test'],
    database: false,
    responses: { 200: { description: 'Never' } },
    handler: () => {
      throw new Error('deliberate test failure');
    },
  }),
  route({
    method: 'post',
    path: '/api/_test/crash',
    operationId: 'testCrash',
    summary: 'Answers, then throws outside any request: the process dies as from a bug',
    tags: ['test'],
    database: false,
    responses: { 202: { description: 'The crash is scheduled' } },
    handler: ({ log }) => {
      log.info('crashing on purpose');
      // After the answer has gone out (and been logged), outside any request.
      setTimeout(() => {
        throw new Error('deliberate crash');
      }, 100);
      return { status: 202 };
    },
  }),
];
