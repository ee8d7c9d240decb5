import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import { pinoHttp } from 'pino-http';
import { DatabaseUnavailableError } from '../errors.ts';
import type { Lifecycle } from '../lifecycle.ts';
import type { Logger } from '../logger.ts';

/**
 * The steps every request passes before its route, each a function of its own so that its cost
 * can be measured on its own (bench/pipeline.ts; the figures are in the README).
 */

/**
 * The response headers OWASP's REST security cheat sheet asks of an API (Cache-Control is the
 * route's, see http/routes.ts). Helmet sets a dozen more that only mean something to a browser
 * rendering HTML; a JSON API needs these four.
 */
const securityHeaderEntries = Object.entries({
  // HTTPS only, for a year, once a client has seen it over HTTPS (the edge may set it too).
  'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
  // A JSON answer is never sniffed into HTML or script…
  'X-Content-Type-Options': 'nosniff',
  // …and never framed, should a browser ever render one.
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
  'X-Frame-Options': 'DENY',
});

export const securityHeaders: RequestHandler = (_req, res, next) => {
  for (const [name, value] of securityHeaderEntries) res.setHeader(name, value);
  next();
};

/** While draining, ask keep-alive clients to reconnect (to another instance). */
export function closeWhenDraining(lifecycle: Lifecycle): RequestHandler {
  return (_req, res, next) => {
    if (lifecycle.shuttingDown) res.setHeader('Connection', 'close');
    next();
  };
}

/** Until the schema is up to date, the API's tables may not exist: a 503 to retry, not a 500. */
export function migrationGate(lifecycle: Lifecycle): RequestHandler {
  return (_req, _res, next) => {
    if (!lifecycle.migrated) throw new DatabaseUnavailableError('migrating');
    next();
  };
}

// Accept a caller's request id only when it is short and harmless in logs and headers.
const saneRequestId = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * One JSON line per request, with its id (the caller's X-Request-Id when sane, else a new one,
 * echoed in the answer). `loggableUrl` decides what of the URL may be written down.
 */
export function requestLog(logger: Logger, loggableUrl: (url: string) => string): RequestHandler {
  return pinoHttp({
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
        url: loggableUrl(req.url),
        remoteAddress: req.remoteAddress,
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
  });
}
