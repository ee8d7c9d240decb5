import { describe, expect, it } from 'vitest';
import { allPanels, dashboardQueries, loadDashboard } from '../metric-usage.ts';
import { metricNamesIn } from '../promql.ts';

const dashboard = loadDashboard();
const panels = allPanels(dashboard);
const dataPanels = panels.filter((p) => p.type !== 'row');

describe('Grafana dashboard monitoring/grafana/tasks-backend.json', () => {
  it('has a stable uid and title, and unique panel ids', () => {
    expect(dashboard.uid).toBe('tasks-backend');
    expect(dashboard.title).toBe('tasks-backend');
    const ids = panels.map((p) => p.id);
    expect(ids.every((id) => Number.isInteger(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('every data panel has targets with a PromQL expression and unique refIds', () => {
    expect(dataPanels.length).toBeGreaterThan(8);
    for (const panel of dataPanels) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) {
        expect(target.expr?.trim(), panel.title).toBeTruthy();
        // Balanced brackets: the cheapest syntax check that catches a broken edit.
        for (const [open, close] of ['()', '{}', '[]']) {
          const count = (c: string) => target.expr!.split(c).length - 1;
          expect(count(open!), `${panel.title}: ${target.expr}`).toBe(count(close!));
        }
      }
      const refIds = (panel.targets ?? []).map((t) => t.refId);
      expect(new Set(refIds).size, panel.title).toBe(refIds.length);
    }
  });

  it('panels sit on the 24-column grid without overlapping', () => {
    const cells = new Map<string, string>();
    for (const panel of panels) {
      const { h, w, x, y } = panel.gridPos!;
      expect(x + w, panel.title).toBeLessThanOrEqual(24);
      for (let row = y; row < y + h; row++) {
        for (let column = x; column < x + w; column++) {
          const key = `${row}:${column}`;
          expect(cells.get(key), `${panel.title} overlaps ${cells.get(key)}`).toBeUndefined();
          cells.set(key, panel.title);
        }
      }
    }
  });

  it('filters every query by the $job and $instance variables it declares', () => {
    const variables = (dashboard.templating?.list ?? []).map((v) => v.name);
    expect(variables).toEqual(['datasource', 'job', 'instance']);
    for (const { expr, where } of dashboardQueries(dashboard).filter((q) =>
      q.where.startsWith('panel'),
    )) {
      expect(expr, where).toContain('job="$job"');
      expect(expr, where).toContain('instance=~"$instance"');
    }
  });

  it('shows requests, errors, latency percentiles per route, in-flight, pool, event-loop lag, memory and restarts', () => {
    const exprs = dataPanels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''));
    const names = new Set(exprs.flatMap((e) => metricNamesIn(e)));
    for (const name of [
      'http_request_duration_seconds_count',
      'http_request_duration_seconds_bucket',
      'http_requests_in_flight',
      'db_pool_total_connections',
      'db_pool_idle_connections',
      'db_pool_waiting_clients',
      'db_pool_max_connections',
      'nodejs_eventloop_lag_p99_seconds',
      'process_resident_memory_bytes',
      'process_start_time_seconds',
    ]) {
      expect(names, name).toContain(name);
    }
    expect(exprs.some((e) => /status_code=~"5\.\."/.test(e))).toBe(true);
    for (const quantile of ['0.5', '0.95', '0.99']) {
      expect(
        exprs.some((e) =>
          e.startsWith(
            `histogram_quantile(${quantile}, sum by (le, route) (rate(http_request_duration_seconds_bucket`,
          ),
        ),
        `p${Number(quantile) * 100} per route`,
      ).toBe(true);
    }
  });
});
