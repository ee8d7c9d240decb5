import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../backend/src/app.ts';
import { loadConfig } from '../../backend/src/config.ts';
import { createDb, type Db } from '../../backend/src/db.ts';
import { createMetrics } from '../../backend/src/metrics.ts';
import { migrate } from '../../backend/src/migrate.ts';
import { createHttpServer, createMetricsServer } from '../../backend/src/server.ts';
import { api } from '../../backend/test/support/api.ts';
import { createTestDatabase, silentLogger } from '../../backend/test/support/database.ts';
import { alertRuleGroups } from '../alerts.ts';
import { exposedSampleNames, metricUsage, missingMetrics } from '../metric-usage.ts';

/**
 * The backend wired as main.ts wires it (default metrics on, query timing, pool gauges), so the
 * exposition is the one Prometheus scrapes. startTestApp turns default metrics off, hence our own.
 */
let db: Db;
let servers: Server[] = [];
let exposition: string;

const listen = async (server: Server) => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};

beforeAll(async () => {
  const databaseUrl = await createTestDatabase();
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: databaseUrl,
    ENABLE_TEST_ROUTES: 'true',
  });
  const metrics = createMetrics({ version: 'test' });
  db = createDb({
    ...config.database,
    url: databaseUrl,
    logger: silentLogger,
    onQuery: (seconds, ok) =>
      metrics.dbQueryDuration.observe({ outcome: ok ? 'ok' : 'error' }, seconds),
  });
  metrics.observePool(() => db.poolStats());
  await migrate(db, silentLogger);
  const app = createApp({
    config,
    db,
    logger: silentLogger,
    metrics,
    lifecycle: { migrated: true, shuttingDown: false },
    version: 'test',
  });
  const client = api(await listen(createHttpServer(app)));
  const metricsUrl = await listen(createMetricsServer(metrics));

  // A little of everything the rules and panels look at: API calls, 4xx, an unmatched path, a 5xx,
  // both health checks.
  const { token } = await client.register();
  const task = await client.post('/api/v1/tasks', { token, body: { title: 'watch me' } });
  await client.get(`/api/v1/tasks/${task.body.id}`, { token });
  await client.get('/api/v1/tasks');
  await client.get('/api/no-such-route');
  await client.get('/api/_test/error');
  await client.get('/api/health');
  await client.get('/api/health/ready');
  // Event-loop lag percentiles appear once the delay monitor has sampled.
  await new Promise((resolve) => setTimeout(resolve, 50));
  exposition = await (await fetch(`${metricsUrl}/metrics`)).text();
});

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  servers = [];
  await db?.end();
});

describe("every metric the alert rules and the dashboard use is in the backend's /metrics", () => {
  it('every name used exists (histograms as _bucket/_sum/_count), apart from Prometheus’s own `up`', () => {
    const usage = metricUsage();
    // The extractor found the families we rely on, so an empty result below means something.
    expect([...usage.keys()]).toEqual(
      expect.arrayContaining([
        'up',
        'http_request_duration_seconds_bucket',
        'http_request_duration_seconds_count',
        'http_requests_in_flight',
        'db_pool_waiting_clients',
        'db_query_duration_seconds_bucket',
        'nodejs_eventloop_lag_p99_seconds',
        'process_start_time_seconds',
        'process_resident_memory_bytes',
        'app_info',
      ]),
    );
    console.log(`metrics used by alerts and dashboard: ${[...usage.keys()].sort().join(', ')}`);
    expect(missingMetrics(usage, exposedSampleNames(exposition))).toEqual([]);
  });

  it('when a metric is renamed in the backend, then the check names it and where it is used', () => {
    const renamed = exposition.replaceAll('db_pool_waiting_clients', 'db_pool_pending_clients');
    expect(missingMetrics(metricUsage(), exposedSampleNames(renamed))).toEqual([
      expect.stringMatching(
        /^db_pool_waiting_clients \(used by alert TasksBackendDbPoolExhausted, panel "Pool connections"\)$/,
      ),
    ]);
  });

  it('the route templates the rules match on are the ones the backend records', () => {
    const routes = new Set([...exposition.matchAll(/route="([^"]*)"/g)].map((m) => m[1]));
    expect(routes).toContain('/api/health');
    expect(routes).toContain('/api/health/ready');
    expect(routes).toContain('/api/v1/tasks/:id');
    expect(routes).toContain('<unmatched>');
    const exprs = alertRuleGroups()
      .flatMap((g) => g.rules.map((r) => r.expr))
      .join('\n');
    for (const literal of exprs.match(/route=~?"([^"]*)"/g) ?? []) {
      // Each alternative of an exact (non-wildcard) route matcher is a route the backend records.
      const pattern = /route=~?"([^"]*)"/.exec(literal)![1]!;
      for (const alternative of pattern.split('|').filter((a) => !/[.*+?]/.test(a))) {
        expect(routes, literal).toContain(alternative);
      }
    }
  });
});
