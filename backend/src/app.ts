import express, { type Express } from 'express';
import { z } from 'zod';
import { bearerAuthenticator, authRoutes, type AuthDeps } from './auth/routes.ts';
import { authService } from './auth/service.ts';
import type { Config } from './config.ts';
import type { Db } from './db.ts';
import { createReadiness, healthRoutes, type HealthDeps } from './health.ts';
import { buildOpenApiDocument } from './http/openapi.ts';
import { beforeRoutes, requestLog } from './http/pipeline.ts';
import { problemHandler, routeNotFound } from './http/problems.ts';
import { mountRoutes, type AnyRoute } from './http/routes.ts';
import type { Lifecycle } from './lifecycle.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { tasksRoutes, type TasksDeps } from './tasks/routes.ts';
import { tasksService } from './tasks/service.ts';
import { testRoutes } from './test-routes.ts';

/**
 * The API is exactly this list: Express mounts it and the OpenAPI document describes it. A new
 * feature adds its routes here, and its service to `AppServices` (the compiler insists on both).
 */
type AppServices = HealthDeps & AuthDeps & TasksDeps;
export const apiRoutes: readonly AnyRoute<AppServices>[] = [
  ...healthRoutes,
  ...authRoutes,
  ...tasksRoutes,
];

const apiTags = {
  health: 'Liveness, readiness, and this document',
  auth: 'Accounts and sessions',
  tasks: "The signed-in user's to-do tasks",
};

export function apiDocument(version: string): Record<string, unknown> {
  return buildOpenApiDocument(apiRoutes, { version, tags: apiTags });
}

/**
 * Query parameters whose values may be logged: the ones the API declares. Anything else a client
 * puts in a URL (`?access_token=…`, `?password=…`) is logged as `[redacted]`.
 */
const loggableQueryParameters = new Set(
  apiRoutes.flatMap((route) =>
    route.query instanceof z.ZodObject ? Object.keys(route.query.shape) : [],
  ),
);

/** The URL as it may be logged: declared query parameters kept, every other value redacted. */
export function loggableUrl(url: string): string {
  const at = url.indexOf('?');
  if (at < 0) return url;
  const query = new URLSearchParams(url.slice(at + 1));
  for (const name of new Set(query.keys())) {
    if (!loggableQueryParameters.has(name)) query.set(name, '[redacted]');
  }
  return `${url.slice(0, at)}?${query.toString()}`;
}

export interface AppDeps {
  config: Config;
  db: Db;
  logger: Logger;
  /** Absent when METRICS_ENABLED=false. */
  metrics: Metrics | undefined;
  lifecycle: Lifecycle;
  version: string;
}

/** Builds the Express app from its dependencies. It never listens: main.ts and tests do that. */
export function createApp(deps: AppDeps): Express {
  const { config, db, logger, metrics, lifecycle, version } = deps;
  const app = express();
  app.disable('x-powered-by');
  // Conditional requests are ours to answer (task ETags are versions), not Express's body hashes.
  app.set('etag', false);
  app.set('trust proxy', config.trustProxy);

  if (metrics) app.use(metrics.middleware);
  app.use(requestLog(logger, loggableUrl));
  app.use(beforeRoutes(lifecycle));

  const auth = authService(db, config.auth);
  const services: AppServices = {
    readiness: createReadiness(db, lifecycle, {
      timeoutMs: Math.min(1000, config.database.connectTimeoutMs),
    }),
    version,
    openApiDocument: () => document,
    auth,
    tasks: tasksService(db),
  };
  const document = apiDocument(version);
  const options = { authenticate: bearerAuthenticator(auth) };
  app.use(mountRoutes(apiRoutes, services, options));
  if (config.enableTestRoutes) app.use(mountRoutes(testRoutes, { db }, options));

  app.use(routeNotFound);
  app.use(problemHandler);
  return app;
}
