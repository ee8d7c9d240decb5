import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  alertNames,
  alertRuleGroups,
  composeAlertOptions,
  kubernetesReferenceOptions,
  renderRulesFile,
  rulesFiles,
  type AlertRule,
  type RuleGroup,
} from '../alerts.ts';

const prometheusDir = new URL('../prometheus/', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, prometheusDir), 'utf8');

interface PromtoolTests {
  rule_files: string[];
  tests: {
    name: string;
    alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[];
  }[];
}

const rulesOf = (groups: readonly RuleGroup[]) => groups.flatMap((g) => g.rules);
const compose = rulesFiles.compose.groups();
const kubernetes = rulesFiles.kubernetes.groups();

/** Alerts with a case where they fire and one where they stay silent in a promtool test file. */
function uncovered(names: readonly string[], testFile: string): string[] {
  const cases = (parse(read(testFile)) as PromtoolTests).tests.flatMap(
    (t) => t.alert_rule_test ?? [],
  );
  return names.flatMap((name) => {
    const own = cases.filter((c) => c.alertname === name);
    return [
      ...(own.some((c) => c.exp_alerts.length > 0) ? [] : [`${name}: no case where it fires`]),
      ...(own.some((c) => c.exp_alerts.length === 0) ? [] : [`${name}: no silent case`]),
    ];
  });
}

/** The compose rule's expression with the compose selectors swapped for the Kubernetes ones. */
function asKubernetes(rule: AlertRule): string {
  const swaps: [string | undefined, string | undefined][] = [
    [composeAlertOptions.selector, kubernetesReferenceOptions.selector],
    [composeAlertOptions.database?.selector, kubernetesReferenceOptions.database?.selector],
  ];
  return swaps.reduce(
    (expr, [from, to]) => (from && to ? expr.replaceAll(`{${from}`, `{${to}`) : expr),
    rule.expr,
  );
}

describe('alert rules (monitoring/alerts.ts)', () => {
  it.each(['compose', 'kubernetes'] as const)(
    'the committed %s rules file is what `npx tsx monitoring/generate.ts` writes today, a plain Prometheus rules file',
    (which) => {
      const { file, groups } = rulesFiles[which];
      expect(
        read(file),
        `${file} is stale: run \`npx tsx monitoring/generate.ts\` and commit the result`,
      ).toBe(renderRulesFile(which));
      expect(parse(read(file))).toEqual({ groups: groups() });
    },
  );

  it('covers the backend, the database (connections, long and idle transactions, deadlocks), the volumes and backup freshness', () => {
    const exprs = [...rulesOf(compose), ...rulesOf(kubernetes)].map((r) => `${r.alert}: ${r.expr}`);
    for (const needle of [
      /TasksBackendDown: up\{/,
      /TasksBackendHighErrorRate: [\s\S]*status_code=~"5\.\."/,
      /TasksBackendHighLatency: histogram_quantile\(0\.95,[\s\S]*http_request_duration_seconds_bucket/,
      /TasksBackendDbPoolExhausted: [\s\S]*db_pool_waiting_clients/,
      /TasksBackendNotReady: [\s\S]*route=~"\/api\/health\|\/api\/health\/ready", status_code="503"/,
      /TasksBackendEventLoopLag: nodejs_eventloop_lag_p99_seconds/,
      /TasksBackendRestarting: changes\(process_start_time_seconds/,
      /TasksDatabaseDown: pg_up\{/,
      /TasksDatabaseConnectionsNearLimit: [\s\S]*pg_stat_activity_count[\s\S]*pg_settings_max_connections/,
      /TasksDatabaseLongTransaction: [\s\S]*pg_stat_activity_max_tx_duration\{[^}]*state="active"/,
      /TasksDatabaseIdleInTransaction: [\s\S]*state=~"idle in transaction\.\*"/,
      /TasksDatabaseDeadlocks: [\s\S]*increase\(pg_stat_database_deadlocks/,
      /TasksVolumeAlmostFull: kubelet_volume_stats_available_bytes\{[^}]*\} \/ kubelet_volume_stats_capacity_bytes/,
      /TasksVolumeFillingUp: [\s\S]*predict_linear\(kubelet_volume_stats_available_bytes/,
      /TasksBackupTooOld: time\(\) - max by \(namespace, cronjob\) \(kube_cronjob_status_last_successful_time\{namespace="tasks", cronjob="tasks-backup"\}\) > 7200/,
      /TasksBackupTooOld: time\(\) - tasks_backup_last_success_timestamp_seconds\{job="tasks-backup"\} > 2 \* tasks_backup_interval_seconds/,
      /TasksBackupMissing: absent\(kube_cronjob_created\{/,
      /TasksBackupMissing: absent\(tasks_backup_last_success_timestamp_seconds\{/,
    ]) {
      expect(
        exprs.some((e) => needle.test(e)),
        String(needle),
      ).toBe(true);
    }
  });

  it('every rule has a unique name within its file, a severity and summary, description and runbook annotations', () => {
    for (const groups of [compose, kubernetes]) {
      const names = alertNames(groups);
      expect(new Set(names).size).toBe(names.length);
    }
    for (const rule of [...rulesOf(compose), ...rulesOf(kubernetes)]) {
      expect(rule.alert).toMatch(/^Tasks(Backend|Database|Volume|Backup)[A-Z]\w+$/);
      expect(['critical', 'warning']).toContain(rule.labels.severity);
      expect(rule.annotations.summary.length, rule.alert).toBeGreaterThan(10);
      expect(rule.annotations.description.length, rule.alert).toBeGreaterThan(20);
      expect(rule.annotations.runbook.length, rule.alert).toBeGreaterThan(20);
      if (rule.for !== undefined) expect(rule.for).toMatch(/^\d+[smh]$/);
    }
  });

  it('the backend selector option reaches every series selector of every backend rule', () => {
    const scoped = alertRuleGroups({ selector: 'job="x", namespace="y"' });
    expect(scoped.map((g) => g.name)).toEqual([
      'tasks-backend.availability',
      'tasks-backend.requests',
      'tasks-backend.saturation',
    ]);
    for (const rule of rulesOf(scoped)) {
      expect(rule.expr, rule.alert).not.toContain('tasks-backend');
      for (const selector of rule.expr.match(/\{[^}]*\}/g) ?? []) {
        expect(selector, rule.alert).toMatch(/^\{job="x", namespace="y"/);
      }
    }
  });

  it('the compose rules (alerts.test.yml) test every alert firing and staying silent', () => {
    expect((parse(read('alerts.test.yml')) as PromtoolTests).rule_files).toEqual(['alerts.yml']);
    expect(uncovered(alertNames(compose), 'alerts.test.yml')).toEqual([]);
  });

  it('the Kubernetes rules (alerts.kubernetes.test.yml) test every alert that differs from its compose twin by more than the selectors', () => {
    const file = parse(read('alerts.kubernetes.test.yml')) as PromtoolTests;
    expect(file.rule_files).toEqual(['alerts.kubernetes.yml']);
    const twins = new Map(rulesOf(compose).map((r) => [r.alert, r]));
    const own = rulesOf(kubernetes)
      .filter((rule) => {
        const twin = twins.get(rule.alert);
        return !twin || asKubernetes(twin) !== rule.expr;
      })
      .map((rule) => rule.alert);
    // What only Kubernetes has: the volumes, and backups from kube-state-metrics' CronJob series.
    expect(own).toEqual([
      'TasksVolumeAlmostFull',
      'TasksVolumeFillingUp',
      'TasksBackupTooOld',
      'TasksBackupMissing',
    ]);
    expect(uncovered(own, 'alerts.kubernetes.test.yml')).toEqual([]);
  });
});
