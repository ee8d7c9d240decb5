import { stringify } from 'yaml';

/**
 * The alerting rules (backend, database, volumes, backups), kept once. Every output comes from here:
 * monitoring/prometheus/alerts.yml for the VPS's Prometheus, monitoring/prometheus/alerts.kubernetes.yml
 * (a reference environment, for promtool) and each environment's PrometheusRule in the cdk8s output
 * (k8s/monitoring-chart.ts). promtool unit tests for every rule live beside the rule files; what to
 * do when one fires is in monitoring/README.md.
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

/** Where the series an alert reads come from (monitoring/metric-usage.ts checks each against it). */
export type MetricSource =
  'backend' | 'postgres-exporter' | 'backup-status-file' | 'kube-state-metrics' | 'kubelet';

export interface AlertOptions {
  /**
   * Label matchers that pick the backend's series out of everything Prometheus scrapes. Both the
   * compose scrape config and a ServiceMonitor on the `tasks-backend` Service produce this job name.
   * @default 'job="tasks-backend"'
   */
  readonly selector?: string;
  /** postgres_exporter's series (in-cluster or compose database). @default - no database rules */
  readonly database?: { readonly selector: string };
  /** The claims whose filling volumes alert, from kubelet's volume stats. @default - none */
  readonly volumes?: { readonly namespace: string; readonly claims: readonly string[] };
  /**
   * Backup freshness: from kube-state-metrics' CronJob series on Kubernetes, from the backup
   * script's status file (node-exporter's textfile collector) on the VPS. @default - none
   */
  readonly backup?:
    | {
        readonly kind: 'cronjob';
        readonly namespace: string;
        readonly cronJob: string;
        /** Seconds between two scheduled runs; the alert allows twice this. */
        readonly intervalSeconds: number;
      }
    | { readonly kind: 'status-file'; readonly selector: string };
}

/** Job names of monitoring/prometheus/prometheus.compose.yml, which the compose rules select. */
export const composeJobs = {
  backend: 'tasks-backend',
  postgres: 'tasks-postgres',
  backup: 'tasks-backup',
} as const;

/** The VPS: docker-compose.monitoring.yml's Prometheus scrapes the backends and both exporters. */
export const composeAlertOptions: AlertOptions = {
  selector: `job="${composeJobs.backend}"`,
  database: { selector: `job="${composeJobs.postgres}"` },
  backup: { kind: 'status-file', selector: `job="${composeJobs.backup}"` },
};

/**
 * A Kubernetes environment watched by prometheus-operator: the ServiceMonitors name the jobs after
 * their Services, and every selector carries the namespace, so one Prometheus can watch several
 * environments.
 */
export function kubernetesAlertOptions(input: {
  readonly namespace: string;
  /** The in-cluster database: its exporter's Service and the claims to watch. */
  readonly database?: { readonly metricsService: string; readonly claims: readonly string[] };
  readonly backup?: { readonly cronJob: string; readonly intervalSeconds: number };
}): AlertOptions {
  const { namespace, database, backup } = input;
  return {
    selector: `job="tasks-backend", namespace="${namespace}"`,
    database: database && {
      selector: `job="${database.metricsService}", namespace="${namespace}"`,
    },
    volumes: database && { namespace, claims: database.claims },
    backup: backup && { kind: 'cronjob', namespace, ...backup },
  };
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
  /** Share of max_connections in use. The connection budget keeps a reserve above this. */
  connectionsRatio: 0.8,
  /** An active transaction this old (seconds): a stuck query, or a pg_dump of a very large database. */
  longTransactionSeconds: 1800,
  /** A session idle inside a transaction this long (seconds) holds its locks and blocks vacuum. */
  idleInTransactionSeconds: 120,
  /** Free space below which a volume is nearly full, and below which its trend is watched. */
  volumeFreeRatioCritical: 0.1,
  volumeFreeRatioWatch: 0.3,
  /** How far ahead a volume's trend must not reach zero. */
  volumeFillHorizon: '4d',
} as const;

export const defaultSelector = 'job="tasks-backend"';

/** Health routes: probes, not users. Excluded from error and latency budgets. */
const healthRoutes = '/api/health.*';
/** Where kubelet probes (`/api/health/ready`) and the compose healthcheck (`/api/health`) land. */
const readinessRoutes = '/api/health|/api/health/ready';

/** Sums keep `namespace`, so one Prometheus watching several environments alerts per environment. */
const byService = 'job, namespace';

const lines = (...parts: string[]) => parts.join('\n');

export function alertRuleGroups(options: AlertOptions = composeAlertOptions): RuleGroup[] {
  const s = options.selector ?? defaultSelector;
  const requests = (extra: string) =>
    `sum by (${byService}) (rate(http_request_duration_seconds_count{${s}, ${extra}}[5m]))`;
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
              'Read the logs of the previous process (kubectl logs --previous / docker compose logs backend-a backend-b) and look for OOMKilled in the pod or container status.',
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
    ...databaseGroups(options),
    ...backupGroups(options),
  ];
}

/** The source of each group's series, by group name. */
export function groupSource(groupName: string): MetricSource {
  if (groupName.startsWith('tasks-backend.')) return 'backend';
  if (groupName === 'tasks-database') return 'postgres-exporter';
  if (groupName === 'tasks-volumes') return 'kubelet';
  if (groupName === 'tasks-backup.kubernetes') return 'kube-state-metrics';
  if (groupName === 'tasks-backup.status-file') return 'backup-status-file';
  throw new Error(`no metric source for rule group ${groupName}`);
}

function databaseGroups(options: AlertOptions): RuleGroup[] {
  const groups: RuleGroup[] = [];
  const database = options.database;
  if (database) {
    const d = database.selector;
    const perServer = 'job, namespace, instance';
    groups.push({
      name: 'tasks-database',
      rules: [
        {
          alert: 'TasksDatabaseDown',
          // pg_up: the exporter runs but cannot connect; up: the exporter itself is gone.
          expr: `pg_up{${d}} == 0 or up{${d}} == 0`,
          for: '2m',
          labels: { severity: 'critical' },
          annotations: {
            summary: 'PostgreSQL does not answer its exporter',
            description:
              '{{ $labels.instance }}: postgres_exporter has not reached PostgreSQL (or has not been scraped) for 2 minutes. The backend answers 503 while the database is away.',
            runbook:
              'Check the database container/pod (docker compose ps db / kubectl get pod tasks-postgres-0) and its logs; a full volume or OOMKilled are the usual causes.',
          },
        },
        {
          alert: 'TasksDatabaseConnectionsNearLimit',
          expr: lines(
            `sum by (${perServer}) (pg_stat_activity_count{${d}})`,
            '/',
            `sum by (${perServer}) (pg_settings_max_connections{${d}})`,
            `> ${thresholds.connectionsRatio}`,
          ),
          for: '5m',
          labels: { severity: 'warning' },
          annotations: {
            summary: 'PostgreSQL connections are close to max_connections',
            description: `{{ $labels.instance }} has used {{ $value | humanizePercentage }} of max_connections for 5 minutes (threshold ${thresholds.connectionsRatio * 100} %). At the limit new connections fail and the backend answers 503.`,
            runbook:
              'Count connections by user and state in pg_stat_activity. More replicas than the connection budget allows (k8s/README.md), a leak, or psql sessions left open: close them, or raise max_connections with the memory it needs.',
          },
        },
        {
          alert: 'TasksDatabaseLongTransaction',
          expr: `max by (${perServer}, datname) (pg_stat_activity_max_tx_duration{${d}, state="active"}) > ${thresholds.longTransactionSeconds}`,
          for: '2m',
          labels: { severity: 'warning' },
          annotations: {
            summary: 'A PostgreSQL transaction has been running for a long time',
            description: `The oldest active transaction in {{ $labels.datname }} on {{ $labels.instance }} has run for {{ $value | humanizeDuration }} (threshold ${thresholds.longTransactionSeconds / 60} minutes). It holds back vacuum and may hold locks.`,
            runbook:
              "Find it: SELECT pid, usename, now() - xact_start, query FROM pg_stat_activity WHERE state = 'active' ORDER BY xact_start. A pg_dump of a large database is expected (compare with the backup duration); anything else: pg_cancel_backend(pid).",
          },
        },
        {
          alert: 'TasksDatabaseIdleInTransaction',
          expr: `max by (${perServer}, datname) (pg_stat_activity_max_tx_duration{${d}, state=~"idle in transaction.*"}) > ${thresholds.idleInTransactionSeconds}`,
          for: '2m',
          labels: { severity: 'warning' },
          annotations: {
            summary: 'A PostgreSQL session sits idle inside a transaction',
            description: `A session in {{ $labels.datname }} on {{ $labels.instance }} has been idle in a transaction for {{ $value | humanizeDuration }} (threshold ${thresholds.idleInTransactionSeconds / 60} minutes): it keeps its locks and stops vacuum from cleaning up.`,
            runbook:
              "SELECT pid, usename, application_name, now() - state_change FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'; end it with pg_terminate_backend(pid). The backend never leaves one open: look for a psql session or a tool.",
          },
        },
        {
          alert: 'TasksDatabaseDeadlocks',
          expr: `sum by (${perServer}, datname) (increase(pg_stat_database_deadlocks{${d}}[15m])) > 0`,
          labels: { severity: 'warning' },
          annotations: {
            summary: 'PostgreSQL detected deadlocks',
            description:
              'PostgreSQL broke deadlocks in {{ $labels.datname }} on {{ $labels.instance }} within the last 15 minutes: each one failed a transaction (the backend answered 503 or 500 to that request).',
            runbook:
              'PostgreSQL logs both statements of every deadlock ("deadlock detected"): find them in the database\'s logs and make the code take its locks in one order.',
          },
        },
      ],
    });
  }
  const volumes = options.volumes;
  if (volumes && volumes.claims.length > 0) {
    const v = `namespace="${volumes.namespace}", persistentvolumeclaim=~"${volumes.claims.join('|')}"`;
    const freeRatio = `kubelet_volume_stats_available_bytes{${v}} / kubelet_volume_stats_capacity_bytes{${v}}`;
    groups.push({
      name: 'tasks-volumes',
      rules: [
        {
          alert: 'TasksVolumeAlmostFull',
          expr: `${freeRatio} < ${thresholds.volumeFreeRatioCritical}`,
          for: '5m',
          labels: { severity: 'critical' },
          annotations: {
            summary: 'A database or backup volume is almost full',
            description: `{{ $labels.persistentvolumeclaim }} has {{ $value | humanizePercentage }} free. A full data volume stops PostgreSQL; a full backup volume stops the backups.`,
            runbook:
              'Expand the claim (kubectl edit pvc, if its StorageClass allows expansion) or, for the backup volume, lower BACKUP_KEEP. Never delete files under PGDATA by hand.',
          },
        },
        {
          alert: 'TasksVolumeFillingUp',
          expr: lines(
            `${freeRatio} < ${thresholds.volumeFreeRatioWatch}`,
            'and',
            `predict_linear(kubelet_volume_stats_available_bytes{${v}}[6h], ${durationSeconds(thresholds.volumeFillHorizon)}) < 0`,
          ),
          for: '1h',
          labels: { severity: 'warning' },
          annotations: {
            summary: 'A database or backup volume will be full within days',
            description: `{{ $labels.persistentvolumeclaim }} has {{ $value | humanizePercentage }} free and, at the last 6 hours' rate, fills within ${thresholds.volumeFillHorizon}.`,
            runbook:
              'Plan the expansion now (kubectl edit pvc, if its StorageClass allows it). On the data volume, look for bloat or a runaway table; on the backup volume, lower BACKUP_KEEP.',
          },
        },
      ],
    });
  }
  return groups;
}

function backupGroups(options: AlertOptions): RuleGroup[] {
  const backup = options.backup;
  if (!backup) return [];
  const runbookTooOld =
    'Read the last backup run (kubectl -n <ns> logs job/<latest tasks-backup job> / docker compose logs backup) and run one by hand (k8s/README.md, README "Backups"). Until one succeeds, the data written since the last dump has no copy.';
  if (backup.kind === 'cronjob') {
    const c = `namespace="${backup.namespace}", cronjob="${backup.cronJob}"`;
    const maxAge = 2 * backup.intervalSeconds;
    const byCronJob = 'namespace, cronjob';
    return [
      {
        name: 'tasks-backup.kubernetes',
        rules: [
          {
            alert: 'TasksBackupTooOld',
            // A CronJob that never succeeded has no last-successful-time series: count from its creation.
            expr: lines(
              `time() - max by (${byCronJob}) (kube_cronjob_status_last_successful_time{${c}}) > ${maxAge}`,
              'or',
              `(time() - max by (${byCronJob}) (kube_cronjob_created{${c}}) > ${maxAge})`,
              `  unless on (${byCronJob}) kube_cronjob_status_last_successful_time{${c}}`,
            ),
            for: '5m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'The newest successful backup is older than twice the schedule',
              description: `No backup of {{ $labels.namespace }} has succeeded for {{ $value | humanizeDuration }}; the schedule runs every ${humanSeconds(backup.intervalSeconds)}.`,
              runbook: runbookTooOld,
            },
          },
          {
            alert: 'TasksBackupMissing',
            expr: `absent(kube_cronjob_created{${c}})`,
            for: '30m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Prometheus sees no backup CronJob',
              description: `kube-state-metrics reports no CronJob ${backup.cronJob} in ${backup.namespace}: it was deleted, or kube-state-metrics is not scraped, and backup freshness is not watched.`,
              runbook:
                'kubectl -n <ns> get cronjob tasks-backup; re-apply k8s/dist/<env>. If it exists, check that Prometheus scrapes kube-state-metrics.',
            },
          },
        ],
      },
    ];
  }
  const b = backup.selector;
  return [
    {
      name: 'tasks-backup.status-file',
      rules: [
        {
          alert: 'TasksBackupTooOld',
          // Both gauges come from the same status file, so they carry the same labels.
          expr: `time() - tasks_backup_last_success_timestamp_seconds{${b}} > 2 * tasks_backup_interval_seconds{${b}}`,
          for: '5m',
          labels: { severity: 'critical' },
          annotations: {
            summary: 'The newest successful backup is older than twice the backup interval',
            description:
              'The last dump that verified is {{ $value | humanizeDuration }} old, more than twice BACKUP_INTERVAL.',
            runbook: runbookTooOld,
          },
        },
        {
          alert: 'TasksBackupMissing',
          expr: `absent(tasks_backup_last_success_timestamp_seconds{${b}})`,
          for: '1h',
          labels: { severity: 'warning' },
          annotations: {
            summary: 'Prometheus sees no backup status',
            description:
              'For an hour there has been no tasks_backup_* series: the backup service has never written its status file, node-exporter cannot read it, or it is not scraped.',
            runbook:
              'ls -l "$BACKUP_DIR/status" on the VPS (backup.prom, readable by everyone); docker compose ps backup node-exporter; Prometheus /targets for the tasks-backup job.',
          },
        },
      ],
    },
  ];
}

function durationSeconds(duration: string): number {
  const match = /^(\d+)([smhd])$/.exec(duration);
  if (!match) throw new Error(`unsupported duration ${duration}`);
  return Number(match[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[match[2] as 's' | 'm' | 'h' | 'd'];
}

function humanSeconds(seconds: number): string {
  if (seconds % 86_400 === 0) return seconds === 86_400 ? 'day' : `${seconds / 86_400} days`;
  if (seconds % 3600 === 0) return seconds === 3600 ? 'hour' : `${seconds / 3600} hours`;
  return `${seconds / 60} minutes`;
}

/** Every alert's name, in file order. */
export function alertNames(groups: readonly RuleGroup[] = alertRuleGroups()): string[] {
  return groups.flatMap((group) => group.rules.map((rule) => rule.alert));
}

/**
 * The rules a Kubernetes environment gets in its PrometheusRule, for a reference environment
 * (namespace `tasks`, in-cluster database, hourly backups): written to
 * prometheus/alerts.kubernetes.yml so promtool can test the Kubernetes-only rules.
 */
export const kubernetesReferenceOptions = kubernetesAlertOptions({
  namespace: 'tasks',
  database: {
    metricsService: 'tasks-postgres-metrics',
    claims: ['data-tasks-postgres-0', 'tasks-backups'],
  },
  backup: { cronJob: 'tasks-backup', intervalSeconds: 3600 },
});

export const rulesFiles = {
  /** docker-compose.monitoring.yml's Prometheus loads this one. */
  compose: {
    file: 'alerts.yml',
    tests: 'alerts.test.yml',
    groups: () => alertRuleGroups(composeAlertOptions),
  },
  kubernetes: {
    file: 'alerts.kubernetes.yml',
    tests: 'alerts.kubernetes.test.yml',
    groups: () => alertRuleGroups(kubernetesReferenceOptions),
  },
} as const;

/** A plain Prometheus rules file. Single quotes: Prettier's style, so `prettier --write .` leaves it as generated. */
export function renderRulesFile(which: keyof typeof rulesFiles = 'compose'): string {
  const { tests, groups } = rulesFiles[which];
  const header = [
    '# Generated from monitoring/alerts.ts by `npx tsx monitoring/generate.ts`: edit that file, not this one.',
    which === 'compose'
      ? "# Loaded by docker-compose.monitoring.yml's Prometheus."
      : "# What a Kubernetes environment's PrometheusRule holds, for a reference environment (namespace tasks).",
    `# Unit tests: monitoring/prometheus/${tests} (promtool test rules). Runbooks: monitoring/README.md.`,
  ].join('\n');
  return `${header}\n${stringify({ groups: groups() }, { lineWidth: 0, singleQuote: true })}`;
}
