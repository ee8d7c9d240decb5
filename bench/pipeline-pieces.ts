import { randomUUID } from 'node:crypto';
import type { RequestListener } from 'node:http';
import express, { type Express, type RequestHandler } from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import { z } from 'zod';
import { loggableUrl } from '../backend/src/app.ts';
import { beforeRoutes, requestLog } from '../backend/src/http/pipeline.ts';
import { problemHandler, routeNotFound } from '../backend/src/http/problems.ts';
import { mountRoutes, routesFor } from '../backend/src/http/routes.ts';
import { Lifecycle } from '../backend/src/lifecycle.ts';
import { createLogger, type Logger } from '../backend/src/logger.ts';
import { createMetrics } from '../backend/src/metrics.ts';
import { taskIdSchema, taskSchema } from '../backend/src/tasks/schemas.ts';
import { parse } from '../backend/src/validation.ts';

/**
 * The steps a request passes before its handler, each on its own in front of one trivial JSON
 * route (`GET /api/v1/tasks/:id` answering a constant task, no database), so that what each
 * costs is its figure minus bare Express's, in the same run (bench/pipeline.ts). The pieces are
 * the backend's own (backend/src/http/pipeline.ts, metrics.ts, logger.ts, http/routes.ts), built
 * as backend/src/app.ts builds them; helmet, pino-http with our settings (as until issue 15) and
 * pino-http's defaults are there for comparison.
 */

export interface PipelinePiece {
  name: string;
  /** What it is, for the table. */
  label: string;
  /** The server's request listener. */
  build(): RequestListener;
  /**
   * Evidence that the piece ran, from one answer's headers (a header it sets). Pieces that leave
   * no header are checked by the harness otherwise (a log line) or not at all.
   */
  sets?: string;
  /** It writes a log line per request (the harness waits for one, to know it is wired). */
  logs?: boolean;
}

export const taskId = '3f2c6b1e-8d4a-4f5e-9c7b-2a1d0e9f8c6b';
export const pipelinePath = `/api/v1/tasks/${taskId}`;

/** A task as the API answers one: what every piece's route sends. */
const task = {
  id: taskId,
  title: 'Benchmark task',
  notes: 'note note note',
  completed: false,
  completedAt: null,
  dueAt: null,
  createdAt: '2026-11-29T12:00:00.000Z',
  updatedAt: '2026-11-29T12:00:00.000Z',
  version: 1,
};

/** Express as backend/src/app.ts sets it up: no X-Powered-By, no ETag hashing of bodies. */
function expressApp(): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  return app;
}

const answer: RequestHandler = (_req, res) => {
  res.json(task);
};

/**
 * `middleware` app-wide, then the trivial route, as app.get. Each piece is built in its own
 * server process only (metrics start collectors, loggers open stdout): never at import.
 */
function plain(...middleware: RequestHandler[]): Express {
  const app = expressApp();
  for (const m of middleware) app.use(m);
  app.get('/api/v1/tasks/:id', answer);
  return app;
}

// Built once, as tasks/routes.ts builds its own (a schema built per request costs its compile).
const idParams = z.object({ id: taskIdSchema });

/** The same route declared in a route table: params validated by zod, a declared response. */
function routeTable() {
  const route = routesFor<Record<string, never>>();
  return mountRoutes(
    [
      route({
        method: 'get',
        path: '/api/v1/tasks/{id}',
        operationId: 'getTask',
        summary: 'Read a task',
        tags: ['tasks'],
        database: false,
        params: idParams,
        responses: { 200: { description: 'The task', body: taskSchema } },
        handler: () => ({ status: 200, body: task }),
      }),
    ],
    {},
    {
      authenticate: () => {
        throw new Error('no route here needs a caller');
      },
    },
  );
}

/**
 * For comparison: requestLog as it was until issue 15 (backend/src/http/pipeline.ts at 02f990b),
 * pino-http with our id, level policy and serializers: the same line, but a child logger per
 * request that serializes the request whether or not a line is written.
 */
function pinoHttpRequestLog(logger: Logger): RequestHandler {
  const saneRequestId = /^[A-Za-z0-9._:-]{1,128}$/;
  return pinoHttp({
    logger,
    genReqId: (req, res) => {
      const given = req.headers['x-request-id'];
      const id = typeof given === 'string' && saneRequestId.test(given) ? given : randomUUID();
      res.setHeader('X-Request-Id', id);
      return id;
    },
    customLogLevel: (_req, res) =>
      res.statusCode >= 500 && res.statusCode !== 503
        ? 'error'
        : res.statusCode >= 400
          ? 'warn'
          : 'info',
    autoLogging: { ignore: (req) => req.url?.startsWith('/api/health') === true },
    serializers: {
      req: (req: { id: unknown; method: string; url: string; remoteAddress?: string }) => ({
        id: req.id,
        method: req.method,
        url: loggableUrl(req.url),
        remoteAddress: req.remoteAddress,
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
  });
}

const info = () => createLogger('info');
const served = () => new Lifecycle({ migrated: true });

export const pipelinePieces: readonly PipelinePiece[] = [
  {
    name: 'node-http',
    label: 'node:http alone, no Express (what Express itself costs, negated)',
    build: () => {
      const body = JSON.stringify(task);
      return (_req, res) => {
        res.writeHead(200, {
          'Content-Type': 'application/json; charset=utf-8',
          'Content-Length': Buffer.byteLength(body),
        });
        res.end(body);
      };
    },
  },
  { name: 'express', label: 'bare Express 5, one app.get route', build: () => plain() },
  {
    name: 'empty-middleware',
    label: 'one middleware that only calls next(): what being a step costs',
    build: () => plain((_req, _res, next) => next()),
  },
  {
    name: 'metrics',
    label: 'metrics middleware (request histogram and in-flight gauge)',
    build: () => plain(createMetrics({ version: 'bench' }).middleware),
  },
  {
    name: 'before-routes',
    label: 'beforeRoutes: security headers, Connection: close when draining, the migration gate',
    build: () => plain(beforeRoutes(served())),
    sets: 'x-content-type-options',
  },
  {
    name: 'request-log',
    label: 'requestLog at info: request id, one JSON line, our serializers',
    build: () => plain(requestLog(info(), loggableUrl)),
    sets: 'x-request-id',
    logs: true,
  },
  {
    name: 'request-log-warn',
    label: 'requestLog at warn: request id and child logger, no line written',
    build: () => plain(requestLog(createLogger('warn'), loggableUrl)),
    sets: 'x-request-id',
  },
  {
    name: 'request-log-pino-http',
    label: 'for comparison: the same line with pino-http, as until issue 15',
    build: () => plain(pinoHttpRequestLog(info())),
    sets: 'x-request-id',
    logs: true,
  },
  {
    name: 'pino-http-defaults',
    label: 'pino-http with its default serializers (every header) and ids, at info',
    build: () => plain(pinoHttp({ logger: info() })),
    logs: true,
  },
  {
    name: 'helmet',
    label: 'helmet 8 with its defaults (its dozen headers)',
    build: () => plain(helmet()),
    sets: 'cross-origin-opener-policy',
  },
  {
    name: 'express-json',
    label: 'express.json() app-wide, on a request without a body',
    build: () => plain(express.json()),
  },
  {
    name: 'zod-params',
    label: 'zod: the id params object parsed in the handler',
    build: () => {
      const app = expressApp();
      app.get('/api/v1/tasks/:id', (req, res) => {
        parse(idParams, req.params, 'path');
        res.json(task);
      });
      return app;
    },
  },
  {
    name: 'route-table',
    label:
      'the route through the route table (mountRoutes: body gate, zod params, no query, reply)',
    build: () => {
      const app = expressApp();
      app.use(routeTable());
      return app;
    },
    sets: 'cache-control',
  },
  {
    name: 'full',
    label: 'the full pipeline of backend/src/app.ts, with the route table (no auth, no database)',
    build: () => {
      const app = expressApp();
      const lifecycle = served();
      app.use(createMetrics({ version: 'bench' }).middleware);
      app.use(requestLog(info(), loggableUrl));
      app.use(beforeRoutes(lifecycle));
      app.use(routeTable());
      app.use(routeNotFound);
      app.use(problemHandler);
      return app;
    },
    sets: 'x-content-type-options',
    logs: true,
  },
];

export function pieceNamed(name: string): PipelinePiece {
  const piece = pipelinePieces.find((p) => p.name === name);
  if (!piece) {
    throw new Error(
      `no pipeline piece "${name}"; there are: ${pipelinePieces.map((p) => p.name).join(', ')}`,
    );
  }
  return piece;
}
