import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import express, { type Express } from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import { authRouter } from './auth/routes.ts';
import type { Config } from './config.ts';
import type { Db } from './db.ts';
import {
  AppError,
  DatabaseUnavailableError,
  payloadTooLarge,
  problemHandler,
  routeNotFound,
} from './errors.ts';
import { createReadiness, healthRouter, type Lifecycle } from './health.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { tasksRouter } from './tasks/routes.ts';
import { testRouter } from './test-routes.ts';

export interface AppDeps {
  config: Config;
  db: Db;
  logger: Logger;
  /** Absent when METRICS_ENABLED=false. */
  metrics: Metrics | undefined;
  lifecycle: Lifecycle;
  version: string;
}

// Accept a caller's request id only when it is short and harmless in logs and headers.
const saneRequestId = /^[A-Za-z0-9._:-]{1,128}$/;
const bodyLimitBytes = 1024 * 1024;

/** Builds the Express app from its dependencies. It never listens: main.ts and tests do that. */
export function createApp(deps: AppDeps): Express {
  const { config, db, logger, metrics, lifecycle } = deps;
  const app = express();
  app.disable('x-powered-by');
  // Conditional requests are ours to answer (task ETags are versions), not Express's body hashes.
  app.set('etag', false);
  app.set('trust proxy', config.trustProxy);

  if (metrics) app.use(metrics.middleware);
  app.use((_req, res, next) => {
    // While draining, ask keep-alive clients to reconnect (to another instance).
    if (lifecycle.shuttingDown) res.setHeader('Connection', 'close');
    next();
  });
  app.use(
    pinoHttp({
      logger,
      genReqId: (req, res) => {
        const given = req.headers['x-request-id'];
        const id = typeof given === 'string' && saneRequestId.test(given) ? given : randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      // 503 is the database being away (an outage alerts on its own), 500 is our bug.
      customLogLevel: (_req, res) =>
        res.statusCode >= 500 && res.statusCode !== 503
          ? 'error'
          : res.statusCode >= 400
            ? 'warn'
            : 'info',
      // Probes and scrapes every few seconds would drown the log; they still get metrics.
      autoLogging: { ignore: (req) => req.url?.startsWith('/api/health') === true },
      serializers: {
        req: (req: { id: unknown; method: string; url: string; remoteAddress?: string }) => ({
          id: req.id,
          method: req.method,
          url: req.url,
          remoteAddress: req.remoteAddress,
        }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
    }),
  );
  app.use(helmet());
  app.use((req, res, next) => {
    // A body we cannot read as JSON gets a clear 415 instead of a confusing validation error.
    const hasBody =
      req.headers['transfer-encoding'] !== undefined ||
      Number(req.headers['content-length'] ?? 0) > 0;
    if (hasBody && !req.is('application/json')) {
      throw new AppError(
        415,
        'unsupported-media-type',
        'Unsupported media type',
        'Send the body as application/json.',
      );
    }
    // Refuse a body declared too large before reading it: body-parser would first read (and
    // discard) all of it, holding the socket for as long as the client keeps sending.
    if (Number(req.headers['content-length'] ?? 0) > bodyLimitBytes) {
      res.setHeader('Connection', 'close');
      throw payloadTooLarge();
    }
    next();
  });
  app.use(
    express.json({
      limit: bodyLimitBytes,
      // JSON text is UTF-8 (RFC 8259). Decoding invalid bytes to U+FFFD would store text the
      // client never sent; reject the body as malformed instead.
      verify: (_req, _res, buf) => {
        if (!isUtf8(buf)) {
          throw Object.assign(new Error('body is not valid UTF-8'), {
            type: 'entity.parse.failed',
          });
        }
      },
    }),
  );

  const readiness = createReadiness(db, lifecycle, {
    timeoutMs: Math.min(1000, config.database.connectTimeoutMs),
  });
  app.use(healthRouter(readiness, deps.version));
  const openapi = JSON.stringify(buildOpenApiDocument(deps.version));
  app.get('/api/openapi.json', (_req, res) => {
    res.type('application/json').send(openapi);
  });
  app.use('/api/v1', (_req, _res, next) => {
    // Until the schema is up to date, the API's tables may not exist: a 503 to retry, not a 500.
    if (!lifecycle.migrated) throw new DatabaseUnavailableError('migrating');
    next();
  });
  app.use(authRouter(db, config.auth));
  app.use(tasksRouter(db));
  if (config.enableTestRoutes) app.use(testRouter(db));

  app.use(routeNotFound);
  app.use(problemHandler);
  return app;
}
