import { describe, expect, it } from 'vitest';
import { metricNamesIn } from '../promql.ts';

describe('metricNamesIn (the metric names a PromQL expression reads)', () => {
  it.each([
    ['up{job="tasks-backend"} == 0', ['up']],
    ['absent(up{job="tasks-backend"})', ['up']],
    [
      'histogram_quantile(0.95, sum by (le, route) (rate(http_request_duration_seconds_bucket{job="$job", route!~"/api/health.*|<unmatched>"}[$__rate_interval])))',
      ['http_request_duration_seconds_bucket'],
    ],
    [
      'sum by (job) (rate(a_total{status_code=~"5.."}[5m])) / sum by (job) (rate(b_total[5m])) > 0.02',
      ['a_total', 'b_total'],
    ],
    ['time() - process_start_time_seconds{instance=~"$instance"}', ['process_start_time_seconds']],
    ['x_seconds > bool 1e3 and on (instance) y_ratio offset 5m', ['x_seconds', 'y_ratio']],
    ['count by (version, node_version) (app_info{job="$job"})', ['app_info']],
    [
      'min_over_time(db_pool_waiting_clients{job="tasks-backend"}[3m]) > 0',
      ['db_pool_waiting_clients'],
    ],
    ['rate(c{path="sum(by)"}[1m]) * on (job) group_left (version) app_info', ['c', 'app_info']],
  ])('%s', (expr, names) => {
    expect(metricNamesIn(expr).sort()).toEqual([...names].sort());
  });
});
