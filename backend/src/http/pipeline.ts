import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
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

/**
 * What every request gets before its route, in one step (each step costs ~10 µs for being one,
 * more than any of these checks; see the README's pipeline table): the security headers; while
 * draining, `Connection: close`, so keep-alive clients reconnect to another instance; and until
 * the schema is up to date, a 503 to retry for the API under /api/v1, whose tables may not exist
 * yet (not a 500). Health, metrics and the OpenAPI document answer meanwhile.
 */
export function beforeRoutes(lifecycle: Lifecycle): RequestHandler {
  return (req, res, next) => {
    for (const [name, value] of securityHeaderEntries) res.setHeader(name, value);
    if (lifecycle.shuttingDown) res.setHeader('Connection', 'close');
    if (!lifecycle.migrated && isVersionedApi(req.path)) {
      throw new DatabaseUnavailableError('migrating');
    }
    next();
  };
}

// As app.use('/api/v1', …) matched: the prefix itself or a path below it, in any case.
const isVersionedApi = (path: string) => /^\/api\/v1(?:\/|$)/i.test(path);

// Accept a caller's request id only when it is short and harmless in logs and headers.
const saneRequestId = /^[A-Za-z0-9._:-]{1,128}$/;

declare module 'http' {
  interface IncomingMessage {
    /** A logger whose lines carry the request (id, method, URL), made on first use. */
    log: Logger;
  }
  interface ServerResponse {
    /** The cause of a 500, for the request's log line. */
    err?: Error;
  }
}

const levelOf = (status: number) =>
  // 503 is the database being away (an outage alerts on its own), 500 is our bug.
  status >= 500 && status !== 503 ? 'error' : status >= 400 ? 'warn' : 'info';

/**
 * One JSON line per request, when its answer is finished (or its connection closed first), with
 * its id (the caller's X-Request-Id when sane, else a new one, echoed in the answer), method,
 * URL as `loggableUrl` allows it, client address, status and time taken; a 500 carries its cause
 * (`res.err`, set by the problem handler). Probes and scrapes every few seconds would drown the
 * log: /api/health is not logged (it still has metrics).
 *
 * Written directly, not with pino-http, whose child logger per request serializes the request
 * whether or not a line is written: ~30 µs a request more for the same line (README, pipeline
 * table). `req.log` is made only when a handler uses it.
 */
export function requestLog(logger: Logger, loggableUrl: (url: string) => string): RequestHandler {
  return (req, res, next) => {
    const given = req.headers['x-request-id'];
    const id = typeof given === 'string' && saneRequestId.test(given) ? given : randomUUID();
    res.setHeader('X-Request-Id', id);
    const started = performance.now();
    const about = () => ({
      id,
      method: req.method,
      url: loggableUrl(req.originalUrl),
      remoteAddress: req.socket.remoteAddress,
    });
    let child: Logger | undefined;
    Object.defineProperty(req, 'log', { get: () => (child ??= logger.child({ req: about() })) });
    if (req.url.startsWith('/api/health')) {
      next();
      return;
    }
    const done = () => {
      res.off('finish', done);
      res.off('close', done);
      const status = res.statusCode;
      const level = res.writableFinished ? levelOf(status) : 'warn';
      if (!logger.isLevelEnabled(level)) return;
      const line = {
        req: about(),
        res: { statusCode: status },
        responseTime: Math.round(performance.now() - started),
        ...(res.err && { err: res.err }),
      };
      if (!res.writableFinished) logger.warn(line, 'request aborted');
      else logger[level](line, res.err ? 'request errored' : 'request completed');
    };
    res.on('finish', done);
    res.on('close', done);
    next();
  };
}
