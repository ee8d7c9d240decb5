import { stringify } from 'yaml';

/**
 * The backend's alerting rules, kept once. Both outputs come from here:
 * monitoring/prometheus/alerts.yml (plain Prometheus, written by monitoring/generate.ts) and the
 * PrometheusRule in the cdk8s output (k8s/monitoring-chart.ts). promtool unit tests for every rule
 * live in monitoring/prometheus/alerts.test.yml; what to do when one fires is in monitoring/README.md.
 */

export type Severity = 'critical' | 'warning';

export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  /** How long the expression must hold before the alert fires. @default - at once */
  readonly for?: string;
  readonly labels: { readonly severity: Severity };
  readonly annotations: {
    readonly summary: string;
    readonly description: string;
    /** One line: the first thing to do when it fires. monitoring/README.md has the long version. */
    readonly runbook: string;
  };
}

export interface RuleGroup {
  readonly name: string;
  readonly rules: readonly AlertRule[];
}

export interface AlertOptions {
  /**
   * Label matchers that pick the backend's series out of everything Prometheus scrapes. Both the
   * compose scrape config and a ServiceMonitor on the `tasks-backend` Service produce this job name.
   * @default 'job="tasks-backend"'
   */
  readonly selector?: string;
}

/** Thresholds, named so the README and the promtool tests can say where a number comes from. */
export const thresholds = {
  /** Share of non-health requests answered 5xx. */
  errorRatio: 0.02,
  /** p95 latency budget per route, seconds. A bucket boundary of the histogram, so it is exact. */
  latencyP95Seconds: 0.5,
  /** Event-loop delay p99, seconds. */
  eventLoopLagP99Seconds: 0.1,
  /** Share of readiness checks answered 503. */
  notReadyRatio: 0.5,
  /** Process starts within the restart window before it counts as a crash loop. */
  restarts: 2,
  restartWindow: '15m',
} as const;

export const defaultSelector = 'job="tasks-backend"';

/** Health routes: probes, not users. Excluded from error and latency budgets. */
const healthRoutes = '/api/health.*';
/** Where kubelet probes (`/api/health/ready`) and the compose healthcheck (`/api/health`) land. */
const readinessRoutes = '/api/health|/api/health/ready';

/** Sums keep `namespace`, so one Prometheus watching several environments alerts per environment. */
const byService = 'job, namespace';

export function alertRuleGroups(options: AlertOptions = {}): RuleGroup[] {
  const s = options.selector ?? defaultSelector;
  const requests = (extra: string) =>
    `sum by (${byService}) (rate(http_request_duration_seconds_count{${s}, ${extra}}[5m]))`;
  const lines = (...parts: string[]) => parts.join('\n');

  return [
    {
      name: 'tasks-backend.availability',
      rules: [
        {
          alert: 'TasksBackendDown',
          expr: `up{${s}} == 0`,
          for: '2m',
          labels: { severity: 'critical' },
          annotations: {
            summary: 'A tasks-backend instance does not answer scrapes',
            description:
              '{{ $labels.instance }} has failed every scrape of /metrics for 2 minutes: the process is down, hung, or the metrics port is unreachable.',
            runbook:
              'Check the container/pod status and its last logs (docker compose ps / kubectl get pods); curl the metrics port from where Prometheus runs.',
          },
        },
        {
          alert: 'TasksBackendTargetMissing',
          expr: `absent(up{${s}})`,
          for: '10m',
          labels: { severity: 'critical' },
          annotations: {
            summary: 'Prometheus has no tasks-backend target at all',
            description:
              'No target matching {' +
              s +
              '} has existed for 10 minutes, so every other backend alert is blind.',
            runbook:
              'Check Prometheus /targets: the scrape job, the ServiceMonitor and its release label, or whether the backend is deployed at all.',
          },
        },
        {
          alert: 'TasksBackendNotReady',
          expr: lines(
            `sum by (${byService}, instance) (rate(http_request_duration_seconds_count{${s}, route=~"${readinessRoutes}", status_code="503"}[5m]))`,
            '/',
            `sum by (${byService}, instance) (rate(http_request_duration_seconds_count{${s}, route=~"${readinessRoutes}"}[5m]))`,
            `> ${thresholds.notReadyRatio}`,
          ),
          for: '5m',
          labels: { severity: 'critical' },
          annotations: {
            summary: 'A tasks-backend instance keeps failing its readiness check',
            description:
              '{{ $labels.instance }} answered {{ $value | humanizePercentage }} of its readiness checks with 503 over 5 minutes: the database is unreachable, migrations are pending, or it is stuck shutting down. Kubernetes sends it no traffic meanwhile.',
            runbook:
              'curl /api/health on it: the body names the failing check (database, migrations, shutdown). Database: check PostgreSQL and DATABASE_URL; migrations: check the migration logs.',
          },
        },
        {
          alert: 'TasksBackendRestarting',
          expr: `changes(process_start_time_seconds{${s}}[${thresholds.restartWindow}]) >= ${thresholds.restarts}`,
          labels: { severity: 'warning' },
          annotations: {
            summary: 'A tasks-backend instance keeps restarting',
            description: `{{ $labels.instance }} restarted {{ $value }} times within ${thresholds.restartWindow}: a crash loop (fatal error, out of memory, failed liveness probe).`,
            runbook:
              'Read the logs of the previous process (kubectl logs --previous / docker compose logs backend) and look for OOMKilled in the pod or container status.',
          },
        },
      ],
    },
    {
      name: 'tasks-backend.requests',
      rules: [
        {
          alert: 'TasksBackendHighErrorRate',
          expr: lines(
            requests(`route!~"${healthRoutes}", status_code=~"5.."`),
            '/',
            requests(`route!~"${healthRoutes}"`),
            `> ${thresholds.errorRatio}`,
          ),
          for: '5m',
          labels: { severity: 'critical' },
          annotations: {
            summary: 'tasks-backend answers too many requests with 5xx',
            description: `{{ $value | humanizePercentage }} of API requests (health checks excluded) failed with 5xx over the last 5 minutes; the budget is ${thresholds.errorRatio * 100} %.`,
            runbook:
              'Split the 5xx by route and status on the dashboard; 503 means the database is unavailable or timing out (check PostgreSQL and the pool), 500 is a bug: find it in the logs by request id.',
          },
        },
        {
          alert: 'TasksBackendHighLatency',
          expr: lines(
            'histogram_quantile(0.95,',
            `  sum by (${byService}, route, le) (rate(http_request_duration_seconds_bucket{${s}, route!~"${healthRoutes}|<unmatched>"}[5m]))`,
            `) > ${thresholds.latencyP95Seconds}`,
          ),
          for: '10m',
          labels: { severity: 'warning' },
          annotations: {
            summary: 'tasks-backend route {{ $labels.route }} is slower than its budget',
            description: `p95 latency of {{ $labels.route }} has been {{ $value | humanizeDuration }} for 10 minutes; the budget is ${thresholds.latencyP95Seconds * 1000} ms.`,
            runbook:
              'Compare with db_query_duration_seconds and the pool gauges: slow queries or waiting for a connection point at the database, high event-loop lag or CPU at the process (scale out).',
          },
        },
      ],
    },
    {
      name: 'tasks-backend.saturation',
      rules: [
        {
          alert: 'TasksBackendDbPoolExhausted',
          // min over the window: every scrape saw a queue, so it never drained in those minutes.
          expr: `min_over_time(db_pool_waiting_clients{${s}}[3m]) > 0`,
          for: '2m',
          labels: { severity: 'warning' },
          annotations: {
            summary: 'tasks-backend queries are queueing for a database connection',
            description:
              '{{ $labels.instance }} has had queries waiting for a pool connection at every scrape for 5 minutes: all DATABASE_POOL_MAX connections are busy. Requests that wait past DATABASE_CONNECT_TIMEOUT_MS get 503.',
            runbook:
              'Look for slow queries (db_query_duration_seconds, pg_stat_activity). If the database has headroom, raise DATABASE_POOL_MAX or add replicas within the connection budget (k8s/README.md).',
          },
        },
        {
          alert: 'TasksBackendEventLoopLag',
          expr: `nodejs_eventloop_lag_p99_seconds{${s}} > ${thresholds.eventLoopLagP99Seconds}`,
          for: '5m',
          labels: { severity: 'warning' },
          annotations: {
            summary: 'tasks-backend event loop is blocked',
            description: `The p99 event-loop delay of {{ $labels.instance }} has been {{ $value | humanizeDuration }} for 5 minutes (budget ${thresholds.eventLoopLagP99Seconds * 1000} ms): every request on that process waits that long.`,
            runbook:
              'Check CPU usage and throttling against the limit: scale out or raise the CPU limit. Sustained lag without CPU pressure means synchronous work in a handler: take a CPU profile (node --cpu-prof).',
          },
        },
      ],
    },
  ];
}

/** Every alert's name, in file order. */
export function alertNames(groups: readonly RuleGroup[] = alertRuleGroups()): string[] {
  return groups.flatMap((group) => group.rules.map((rule) => rule.alert));
}

export const rulesFileHeader = [
  '# Generated from monitoring/alerts.ts by `npx tsx monitoring/generate.ts`: edit that file, not this one.',
  '# Unit tests: monitoring/prometheus/alerts.test.yml (promtool test rules). Runbooks: monitoring/README.md.',
].join('\n');

/** The plain Prometheus rules file (rule_files: [alerts.yml]). Single quotes: Prettier's style, so `prettier --write .` leaves it as generated. */
export function renderRulesFile(groups: readonly RuleGroup[] = alertRuleGroups()): string {
  return `${rulesFileHeader}\n${stringify({ groups }, { lineWidth: 0, singleQuote: true })}`;
}
