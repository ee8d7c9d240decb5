import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api } from '../../backend/test/support/api.ts';
import { startTestApp, type TestApp } from '../../backend/test/support/test-app.ts';
import { alertRuleGroups } from '../alerts.ts';
import { exposedSampleNames, metricUsage, missingMetrics } from '../metric-usage.ts';

/** The backend wired as main.ts wires it (default metrics on), so the exposition is the one
 * Prometheus scrapes. */
let app: TestApp;
let exposition: string;

beforeAll(async () => {
  app = await startTestApp({ ENABLE_TEST_ROUTES: 'true' }, { defaultMetrics: true });
  const client = api(app.baseUrl);

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
  exposition = await (await fetch(app.metricsUrl)).text();
});

afterAll(() => app.close());

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
