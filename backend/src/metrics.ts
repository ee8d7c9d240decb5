import type { RequestHandler } from 'express';
import client from 'prom-client';

/**
 * The app's own registry (never prom-client's global one, so tests and several apps in one
 * process do not share state). Names follow Prometheus conventions; the alert rules and the
 * dashboard refer to them, and a test checks they still exist.
 */

const UNMATCHED_ROUTE = '<unmatched>';

export interface Metrics {
  readonly registry: client.Registry;
  readonly httpRequestDuration: client.Histogram<'method' | 'route' | 'status_code'>;
  readonly httpRequestsInFlight: client.Gauge;
  readonly dbQueryDuration: client.Histogram<'outcome'>;
  readonly dbRetries: client.Counter<'reason'>;
  /** Express middleware that times every request by its route template. */
  readonly middleware: RequestHandler;
  /** Registers gauges that read the pool's counts at scrape time. */
  observePool(stats: () => { total: number; idle: number; waiting: number; max: number }): void;
}

export function createMetrics(options: { version: string; collectDefaults?: boolean }): Metrics {
  const registry = new client.Registry();
  if (options.collectDefaults !== false) client.collectDefaultMetrics({ register: registry });

  new client.Gauge({
    name: 'app_info',
    help: 'Build information; the value is always 1',
    labelNames: ['version', 'node_version'],
    registers: [registry],
  }).set({ version: options.version, node_version: process.version }, 1);

  const httpRequestDuration = new client.Histogram({
    name: 'http_request_duration_seconds',
    help: 'Duration of HTTP requests by method, route template and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const httpRequestsInFlight = new client.Gauge({
    name: 'http_requests_in_flight',
    help: 'HTTP requests being served right now',
    registers: [registry],
  });
  const dbQueryDuration = new client.Histogram({
    name: 'db_query_duration_seconds',
    help: 'Duration of database queries, by outcome (ok or error)',
    labelNames: ['outcome'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers: [registry],
  });

  const dbRetries = new client.Counter({
    name: 'db_retries_total',
    help: 'Work run again after PostgreSQL broke a deadlock or a serialization conflict',
    labelNames: ['reason'] as const,
    registers: [registry],
  });

  const middleware: RequestHandler = (req, res, next) => {
    const started = process.hrtime.bigint();
    httpRequestsInFlight.inc();
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      httpRequestsInFlight.dec();
      // The template (`/api/v1/tasks/:id`), never the raw path: raw ids would explode cardinality.
      const template = (req.route as { path?: unknown } | undefined)?.path;
      const route = typeof template === 'string' ? `${req.baseUrl}${template}` : UNMATCHED_ROUTE;
      // A client that disconnects before the answer is recorded as 499, as nginx does.
      const status = res.writableFinished ? res.statusCode : 499;
      httpRequestDuration.observe(
        { method: req.method, route, status_code: String(status) },
        Number(process.hrtime.bigint() - started) / 1e9,
      );
    };
    res.once('finish', finish);
    res.once('close', finish);
    next();
  };

  return {
    registry,
    httpRequestDuration,
    httpRequestsInFlight,
    dbQueryDuration,
    dbRetries,
    middleware,
    observePool(stats) {
      const gauge = (name: string, help: string, pick: (s: ReturnType<typeof stats>) => number) =>
        new client.Gauge({
          name,
          help,
          registers: [registry],
          collect() {
            this.set(pick(stats()));
          },
        });
      gauge(
        'db_pool_total_connections',
        'Connections open in the pool (idle and in use)',
        (s) => s.total,
      );
      gauge('db_pool_idle_connections', 'Idle connections in the pool', (s) => s.idle);
      gauge(
        'db_pool_waiting_clients',
        'Queries waiting for a free pool connection',
        (s) => s.waiting,
      );
      gauge('db_pool_max_connections', 'Configured maximum size of the pool', (s) => s.max);
    },
  };
}
