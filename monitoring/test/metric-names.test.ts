import { existsSync, readFileSync } from 'node:fs';
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

describe('metrics the rules read from other sources', () => {
  it('the backup freshness rules read gauges the backup script writes to its status file', () => {
    const script = new URL('../../backup/backup.sh', import.meta.url);
    expect(
      existsSync(script),
      'backup/backup.sh is missing: the VPS backup service and the k8s CronJob run it',
    ).toBe(true);
    // Each gauge is written as `gauge <name> '<help>' <value>`, exposed as tasks_backup_<name>.
    const written = new Set(
      [...readFileSync(script, 'utf8').matchAll(/^\s*gauge (\w+) '/gm)].map(
        (m) => `tasks_backup_${m[1]}`,
      ),
    );
    expect(written).toEqual(
      new Set([
        'tasks_backup_last_success_timestamp_seconds',
        'tasks_backup_last_size_bytes',
        'tasks_backup_last_duration_seconds',
        'tasks_backup_dumps',
        'tasks_backup_interval_seconds',
      ]),
    );
    const used = [...metricUsage(undefined, 'backup-status-file').keys()];
    expect(used.sort()).toEqual([
      'tasks_backup_interval_seconds',
      'tasks_backup_last_success_timestamp_seconds',
    ]);
    expect(used.filter((name) => !written.has(name))).toEqual([]);
  });

  it('kube-state-metrics and kubelet series: the names their documentation gives (no cluster here to scrape)', () => {
    // kube-state-metrics docs/metrics/workload/cronjob-metrics.md; kubelet volume stats (STABLE).
    expect([...metricUsage(undefined, 'kube-state-metrics').keys()].sort()).toEqual([
      'kube_cronjob_created',
      'kube_cronjob_status_last_successful_time',
    ]);
    expect([...metricUsage(undefined, 'kubelet').keys()].sort()).toEqual([
      'kubelet_volume_stats_available_bytes',
      'kubelet_volume_stats_capacity_bytes',
    ]);
  });
});
