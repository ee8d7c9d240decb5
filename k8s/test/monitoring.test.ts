import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import {
  alertRuleGroups,
  kubernetesAlertOptions,
  type RuleGroup,
} from '../../monitoring/alerts.ts';
import { backupIntervalSeconds } from '../backup-schedule.ts';
import { dashboardFile } from '../monitoring-chart.ts';
import { dev } from '../environments/dev.ts';
import { production } from '../environments/production.ts';
import { ofKind, synthesize, synthesizedEnvironments } from './support/manifests.ts';

const dashboardJson = readFileSync(dashboardFile, 'utf8');

describe.each(synthesizedEnvironments)(
  '$env.name: alert rules and dashboard',
  ({ env, objects }) => {
    const operator = env.monitoring.prometheusOperator;
    const rules = ofKind<{ spec: { groups: RuleGroup[] } }>(objects, 'PrometheusRule');
    const dashboards = ofKind<IConfigMap>(objects, 'ConfigMap').filter(
      (c) => c.data?.['tasks-backend.json'] !== undefined,
    );

    it('a PrometheusRule (CRD, checked by hand) exactly when prometheus-operator objects are on, labelled for its ruleSelector', () => {
      if (!operator) {
        expect(rules).toEqual([]);
        return;
      }
      expect(rules).toHaveLength(1);
      const [rule] = rules;
      expect(rule).toMatchObject({
        apiVersion: 'monitoring.coreos.com/v1',
        metadata: { name: 'tasks-backend', labels: { release: operator.releaseLabel } },
      });
      expect(Object.keys(rule!.spec)).toEqual(['groups']);
      for (const group of rule!.spec.groups) {
        expect(Object.keys(group).sort()).toEqual(['name', 'rules']);
        for (const r of group.rules) {
          for (const field of Object.keys(r)) {
            expect(['alert', 'expr', 'for', 'labels', 'annotations']).toContain(field);
          }
          if (r.for !== undefined) expect(r.for).toMatch(/^\d+(s|m|h)$/);
        }
      }
    });

    it('the rules are those of monitoring/alerts.ts for this environment, every series scoped to its namespace (one Prometheus may watch several environments)', () => {
      if (!operator) return;
      const groups = rules[0]!.spec.groups;
      const database = env.database.mode === 'in-cluster' ? env.database : undefined;
      expect(groups).toEqual(
        alertRuleGroups(
          kubernetesAlertOptions({
            namespace: env.namespace,
            database: database && {
              metricsService: 'tasks-postgres-metrics',
              claims: ['data-tasks-postgres-0', ...(database.backup ? ['tasks-backups'] : [])],
            },
            backup: database?.backup && {
              cronJob: 'tasks-backup',
              intervalSeconds: database.backup.intervalSeconds,
            },
          }),
        ),
      );
      const names = groups.flatMap((g) => g.rules.map((r) => r.alert));
      expect(names.some((n) => n.startsWith('TasksDatabase'))).toBe(database !== undefined);
      expect(names.includes('TasksBackupTooOld')).toBe(database?.backup !== undefined);
      for (const rule of groups.flatMap((g) => g.rules)) {
        const selectors = rule.expr.match(/\{[^}]*\}/g) ?? [];
        expect(selectors.length, rule.alert).toBeGreaterThan(0);
        for (const selector of selectors) {
          expect(selector, rule.alert).toContain(`namespace="${env.namespace}"`);
        }
      }
    });

    it('the backup alert allows twice the CronJob schedule, read from the CronJob itself', () => {
      const cronJobs = ofKind<{ spec: { schedule: string } }>(objects, 'CronJob');
      if (!operator || cronJobs.length === 0) return;
      const interval = backupIntervalSeconds(cronJobs[0]!.spec.schedule);
      const rule = rules[0]!.spec.groups
        .flatMap((g) => g.rules)
        .find((r) => r.alert === 'TasksBackupTooOld');
      expect(interval).toBe(3600);
      expect(rule?.expr).toContain(`> ${2 * (interval as number)}`);
      expect(rule?.expr).toContain('kube_cronjob_status_last_successful_time');
    });

    it('the dashboard ConfigMap carries the sidecar label and the committed dashboard, byte for byte', () => {
      if (!operator?.grafanaDashboard) {
        expect(dashboards).toEqual([]);
        return;
      }
      expect(dashboards).toHaveLength(1);
      const [configMap] = dashboards;
      expect(configMap!.metadata?.labels).toMatchObject({ grafana_dashboard: '1' });
      expect(configMap!.metadata?.namespace).toBe(env.namespace);
      expect(configMap!.data?.['tasks-backend.json']).toBe(dashboardJson);
    });
  },
);

describe('Grafana dashboard settings', () => {
  const dashboardsOf = (settings: typeof production) =>
    ofKind<IConfigMap>(synthesize(settings).objects, 'ConfigMap').filter(
      (c) => c.data?.['tasks-backend.json'] !== undefined,
    );

  it("when the environment names Grafana's namespace and label, then the ConfigMap goes there with that label", () => {
    const [configMap, ...rest] = dashboardsOf({
      ...production,
      monitoring: {
        prometheusOperator: {
          releaseLabel: 'prom',
          grafanaDashboard: { namespace: 'grafana', labelName: 'dashboards', labelValue: 'tasks' },
        },
      },
    });
    expect(rest).toEqual([]);
    expect(configMap?.metadata?.namespace).toBe('grafana');
    expect(configMap?.metadata?.labels).toMatchObject({ dashboards: 'tasks' });
    expect(configMap?.metadata?.labels).not.toHaveProperty('grafana_dashboard');
  });

  it('when grafanaDashboard is false, then no dashboard ConfigMap, but the rules stay', () => {
    const settings = {
      ...production,
      monitoring: {
        prometheusOperator: { releaseLabel: 'prom', grafanaDashboard: false as const },
      },
    };
    expect(dashboardsOf(settings)).toEqual([]);
    expect(ofKind(synthesize(settings).objects, 'PrometheusRule')).toHaveLength(1);
  });

  it('without prometheus-operator objects (dev), neither rules nor dashboard are emitted', () => {
    expect(dashboardsOf(dev)).toEqual([]);
    expect(ofKind(synthesize(dev).objects, 'PrometheusRule')).toEqual([]);
  });
});
