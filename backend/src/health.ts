import { z } from 'zod';
import type { Db } from './db.ts';
import { routesFor } from './http/routes.ts';
import type { Lifecycle } from './lifecycle.ts';

/**
 * Liveness never touches the database (a database outage must not restart every pod);
 * readiness does, bounded in time and cached for about a second so probes cannot hammer it.
 */

export interface ReadinessResult {
  ready: boolean;
  checks: {
    database: 'ok' | 'unavailable';
    migrations: 'ok' | 'pending';
    shutdown: 'no' | 'in progress';
  };
}

export type Readiness = () => Promise<ReadinessResult>;

export function createReadiness(
  db: Db,
  lifecycle: Lifecycle,
  options: { timeoutMs: number; cacheMs?: number },
): Readiness {
  const cacheMs = options.cacheMs ?? 1000;
  let cached: { at: number; ok: boolean } | undefined;
  let inFlight: Promise<boolean> | undefined;

  const databaseOk = (): Promise<boolean> => {
    if (cached && Date.now() - cached.at < cacheMs) return Promise.resolve(cached.ok);
    // Concurrent probes share one check.
    inFlight ??= db
      .ping(options.timeoutMs)
      .then(
        () => true,
        () => false,
      )
      .then((ok) => {
        cached = { at: Date.now(), ok };
        inFlight = undefined;
        return ok;
      });
    return inFlight;
  };

  return async () => {
    const database = (await databaseOk()) ? 'ok' : 'unavailable';
    const checks = {
      database,
      migrations: lifecycle.migrated ? 'ok' : 'pending',
      shutdown: lifecycle.shuttingDown ? 'in progress' : 'no',
    } as const;
    return {
      ready: database === 'ok' && lifecycle.migrated && !lifecycle.shuttingDown,
      checks,
    };
  };
}

export const healthSchema = z
  .object({
    status: z.enum(['ok', 'unavailable']),
    version: z.string().describe('The build that answered (APP_VERSION)'),
    database: z.enum(['ok', 'unavailable']).optional(),
    migrations: z.enum(['ok', 'pending']).optional(),
    shutdown: z.enum(['no', 'in progress']).optional(),
  })
  .meta({ id: 'Health' });

const openApiDocumentSchema = z
  .looseObject({ openapi: z.string(), info: z.looseObject({}), paths: z.looseObject({}) })
  .meta({ id: 'OpenApiDocument' });

export interface HealthDeps {
  readonly readiness: Readiness;
  /** Every answer names the version, so a rollout (or a load balancer) shows which build served. */
  readonly version: string;
  /** The OpenAPI document, serialised once. */
  readonly openApiDocument: () => unknown;
}

const route = routesFor<HealthDeps>();

const readyRoute = (path: '/api/health/ready' | '/api/health', operationId: string) =>
  route({
    method: 'get',
    path,
    operationId,
    summary:
      path === '/api/health'
        ? 'Same as /api/health/ready'
        : 'Readiness: 200 when the database answers, migrations are applied and no shutdown is under way',
    tags: ['health'],
    database: false,
    responses: {
      200: { description: 'Ready', body: healthSchema },
      503: { description: 'Not ready; the body says why', body: healthSchema },
    },
    handler: async (_ctx, { readiness, version }) => {
      const result = await readiness();
      const body = { version, ...result.checks };
      return result.ready
        ? { status: 200, body: { status: 'ok', ...body } }
        : { status: 503, body: { status: 'unavailable', ...body } };
    },
  });

export const healthRoutes = [
  route({
    method: 'get',
    path: '/api/health/live',
    operationId: 'getLiveness',
    summary: 'Liveness: 200 while the process runs; never touches the database',
    tags: ['health'],
    database: false,
    responses: { 200: { description: 'Alive', body: healthSchema } },
    handler: (_ctx, { version }) => ({
      status: 200,
      body: { status: 'ok', version },
    }),
  }),
  readyRoute('/api/health/ready', 'getReadiness'),
  readyRoute('/api/health', 'getHealth'),
  route({
    method: 'get',
    path: '/api/openapi.json',
    operationId: 'getOpenApiDocument',
    summary: 'This document',
    tags: ['health'],
    database: false,
    responses: { 200: { description: 'The OpenAPI 3.1 document', body: openApiDocumentSchema } },
    handler: (_ctx, { openApiDocument }) => ({
      status: 200,
      body: openApiDocument() as z.input<typeof openApiDocumentSchema>,
    }),
  }),
];
